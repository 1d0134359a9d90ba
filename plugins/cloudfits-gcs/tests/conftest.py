"""The GCS emulators on 127.0.0.1, one after the other, the SDK's environment pointed at each.

Every test using ``gcs_server`` runs once against gcp-storage-emulator and once against
fake-gcs-server (see `cloudfits.testing.gcs`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite(
    "cloudfits.testing.conformance", "cloudfits.testing.hostile_reads", "cloudfits.testing.canaries"
)

from cloudfits.testing.gcs import GCS_SERVERS, GCSServer, start_gcs_server  # noqa: E402
from cloudfits.testing.process import serving, start_or_skip  # noqa: E402


@pytest.fixture(scope="session", params=GCS_SERVERS)
def gcs_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GCSServer]:
    name: str = request.param
    server = start_or_skip(lambda: start_gcs_server(name, tmp_path_factory.mktemp(name)))
    with serving(server, {"STORAGE_EMULATOR_HOST": server.endpoint_url}):
        yield server
