"""Start a throw-away Azurite (Azure Blob storage emulator) on 127.0.0.1.

Azurite is the npm package ``azurite``; ``npm ci`` in the source tree installs the
version ``package.json`` pins into ``node_modules/``. It runs in memory, without
telemetry, on a free port::

    azurite-blob --blobHost 127.0.0.1 --blobPort P --inMemoryPersistence
                 --disableTelemetry --skipApiVersionCheck --silent

Examples
--------
>>> with start_azurite(Path("/tmp/az")) as server:  # doctest: +SKIP
...     server.create_container("data")
...     server.connection_string
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import ProcessServer, ServerProcess, find_executable, free_port, http_ready

__all__ = [
    "azurite_environment",
    "ACCOUNT_KEY",
    "ACCOUNT_NAME",
    "AzuriteServer",
    "find_azurite",
    "start_azurite",
]

#: Azurite's built-in development account and its published key.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def find_azurite() -> str:
    """The ``azurite-blob`` executable (``CLOUDFITS_AZURITE``, ``node_modules/.bin``, PATH)."""
    return find_executable(
        "azurite-blob", "CLOUDFITS_AZURITE", "install it with 'npm ci' in the source tree"
    )


@dataclass(eq=False)
class AzuriteServer(ProcessServer):
    """A running Azurite blob service.

    Attributes
    ----------
    account_url : str
        ``http://127.0.0.1:P/devstoreaccount1``.
    port : int
    process : ServerProcess
    """

    account_url: str
    port: int
    process: ServerProcess

    @property
    def account_name(self) -> str:
        """The development account's name."""
        return ACCOUNT_NAME

    @property
    def account_key(self) -> str:
        """The development account's (published) key."""
        return ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        """A connection string for the development account on this server."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.account_url};"
        )

    def service_client(self) -> Any:
        """An ``azure.storage.blob.BlobServiceClient`` with the account key."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str, *, public: bool = False) -> None:
        """Create a container unless it exists; ``public`` allows anonymous reads."""
        from azure.core.exceptions import ResourceExistsError

        container = self.service_client().get_container_client(name)
        with contextlib.suppress(ResourceExistsError):
            container.create_container(public_access="container" if public else None)

    def put_blob(self, container: str, name: str, data: bytes) -> Any:
        """Store ``data`` as the blob ``name`` of ``container``, created unless it exists.

        Returns the ``azure.storage.blob.ContainerClient`` of ``container``.
        """
        self.create_container(container)
        client = self.service_client().get_container_client(container)
        client.upload_blob(name, data, overwrite=True)
        return client


def azurite_environment(server: AzuriteServer) -> dict[str, str | None]:
    """The ``AZURE_STORAGE_*`` variables that point the Azure SDK at ``server`` alone."""
    return {
        "AZURE_STORAGE_ACCOUNT": None,
        "AZURE_STORAGE_KEY": None,
        "AZURE_STORAGE_SAS_TOKEN": None,
        "AZURE_STORAGE_CONNECTION_STRING": server.connection_string,
    }


def start_azurite(workdir: Path, *, timeout: float = 30.0) -> AzuriteServer:
    """Start ``azurite-blob`` on 127.0.0.1 and wait until it answers.

    Parameters
    ----------
    workdir : Path
        Its working directory (log in ``server.log``).
    timeout : float
        Seconds to wait.

    Returns
    -------
    AzuriteServer

    Raises
    ------
    cloudfits.testing.process.ServerNotFoundError
        When Azurite is not installed.
    RuntimeError
        When it exits or does not answer in time.
    """
    executable = find_azurite()
    port = free_port()
    command = [
        executable,
        "--blobHost", "127.0.0.1",
        "--blobPort", str(port),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"
    process = ServerProcess(
        "Azurite", command, workdir, http_ready(url + "?comp=list"), timeout=timeout
    )
    return AzuriteServer(account_url=url, port=port, process=process)
