"""Local servers for the libcloud drivers: moto (S3 listing), SeaweedFS (S3 reads), Azurite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite(
    "cloudfits.testing.conformance", "cloudfits.testing.hostile_reads", "cloudfits.testing.canaries"
)

from cloudfits.testing.azurite import AzuriteServer, start_azurite  # noqa: E402
from cloudfits.testing.moto import MotoServer, start_moto  # noqa: E402
from cloudfits.testing.process import start_or_skip  # noqa: E402
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs  # noqa: E402


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = start_or_skip(start_moto)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = start_or_skip(lambda: start_azurite(tmp_path_factory.mktemp("azurite")))
    try:
        yield server
    finally:
        server.stop()
