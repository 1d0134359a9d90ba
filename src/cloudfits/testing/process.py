"""A local server process for tests: started on 127.0.0.1, probed until ready, stopped.

The launchers of the Azure and Google Cloud Storage emulators
(`cloudfits.testing.azurite`, `cloudfits.testing.gcs`) are built on `ServerProcess`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol, TypeVar

from .seaweedfs import free_port

__all__ = [
    "ProcessServer",
    "ServerNotFoundError",
    "ServerProcess",
    "find_executable",
    "free_port",
    "serving",
    "start_or_skip",
]

T = TypeVar("T")


class _Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Stoppable)

_live: set[ServerProcess] = set()
_live_lock = threading.Lock()


class ServerNotFoundError(RuntimeError):
    """The server's executable is not installed."""


def find_executable(name: str, variable: str, hint: str) -> str:
    """Find a server executable.

    Looked for, in order: the environment variable ``variable``; ``node_modules/.bin``
    in the working directory, its parents and the parents of this package (where
    ``npm ci`` in a source tree puts it); ``PATH``.

    Parameters
    ----------
    name : str
        The executable's file name.
    variable : str
        An environment variable that may hold its full path.
    hint : str
        How to install it, for the error message.

    Returns
    -------
    str

    Raises
    ------
    ServerNotFoundError
        When it is nowhere.
    """
    given = os.environ.get(variable)
    if given:
        if os.access(given, os.X_OK):
            return given
        raise ServerNotFoundError(f"{variable}={given!r} is not an executable file")
    places = [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for place in places:
        candidate = place / "node_modules" / ".bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ServerNotFoundError(f"{name} not found ({variable}, node_modules/.bin, PATH); {hint}")


def start_or_skip(start: Callable[[], T]) -> T:
    """Call ``start()``; when its server is not installed, skip the calling test.

    With ``CLOUDFITS_REQUIRE_SERVERS=1`` (as CI sets it) a missing server fails the
    test instead, so that no provider goes untested unnoticed.
    """
    import pytest

    try:
        return start()
    except ServerNotFoundError as err:
        if os.environ.get("CLOUDFITS_REQUIRE_SERVERS", "") not in ("", "0"):
            raise
        pytest.skip(str(err))


@contextlib.contextmanager
def serving(server: S, environment: Mapping[str, str | None] = {}) -> Iterator[S]:
    """Point the environment at a started ``server`` while in the block, then stop it.

    ``environment`` maps variables to values (None unsets one); the previous values come
    back afterwards. The provider registry is reset on the way in and out, because
    providers read the environment when their clients are built.
    """
    from ..providers.registry import reset_registry

    environment = environment or {}
    saved = {name: os.environ.get(name) for name in environment}
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_registry()
    try:
        yield server
    finally:
        server.stop()
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        reset_registry()


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness probe: True once ``url`` answers HTTP at all (any status)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    return probe


class ServerProcess:
    """A server subprocess with its log file; a context manager.

    Parameters
    ----------
    name : str
        What it is, for messages ("Azurite", "fake-gcs-server").
    command : sequence of str
        The command line.
    workdir : Path
        Its working directory; its output goes to ``workdir/server.log``.
    ready : callable
        Returns True once the server answers.
    env : dict, optional
        Its environment (default: this process's).
    timeout : float
        Seconds to wait for ``ready``.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        workdir: Path,
        ready: Callable[[], bool],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self._log: IO[bytes] | None = open(self.log_path, "ab")  # noqa: SIM115
        started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                list(command),
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._log.close()
            raise
        with _live_lock:
            _live.add(self)
        try:
            self._wait(ready, timeout)
        except BaseException:
            self.stop()
            raise
        #: Seconds from launch until the server answered.
        self.start_seconds = time.monotonic() - started

    def _wait(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {code} during start-up; log"
                    f" ({self.log_path}):\n{self.log_tail()}"
                )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{self.name} did not answer within {timeout} s; log ({self.log_path}):\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s); safe to call more than once."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


P = TypeVar("P", bound="ProcessServer")


class ProcessServer:
    """What a test server run as a `ServerProcess` offers: its start time, `stop`, ``with``.

    A subclass (a dataclass) has the field ``process``.
    """

    process: ServerProcess

    @property
    def start_seconds(self) -> float:
        """Seconds from launch until it answered."""
        return self.process.start_seconds

    def stop(self) -> None:
        """Stop the server."""
        self.process.stop()

    def __enter__(self: P) -> P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
