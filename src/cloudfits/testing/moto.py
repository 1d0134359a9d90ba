"""Start moto's S3 server in this process, on 127.0.0.1.

moto copies a whole object for every ranged GET, so it suits small objects only; it is
used where SeaweedFS cannot serve a client (libcloud's S3 driver lists with a query
SeaweedFS rejects).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .process import ServerNotFoundError, free_port

__all__ = ["MotoServer", "start_moto"]


@dataclass(eq=False)
class MotoServer:
    """A running moto server.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:P``.
    start_seconds : float
        Seconds from launch until it answered.
    """

    endpoint_url: str
    start_seconds: float
    _server: Any

    def client(self) -> Any:
        """A boto3 S3 client for this server (dummy credentials)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def create_bucket(self, name: str) -> None:
        """Create a bucket (moto accepts creating one twice)."""
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_moto() -> MotoServer:
    """Start ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a free port.

    Raises
    ------
    cloudfits.testing.process.ServerNotFoundError
        When moto (with its ``server`` extra) is not installed.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as err:
        raise ServerNotFoundError("moto is not installed: install 'moto[server]'") from err
    started = time.monotonic()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return MotoServer(f"http://127.0.0.1:{port}", time.monotonic() - started, server)
