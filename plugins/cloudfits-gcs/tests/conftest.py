"""A fake-gcs-server on 127.0.0.1 for the whole session, the SDK's environment pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("cloudfits.testing.conformance")

from cloudfits.plugins import reset_registry  # noqa: E402
from cloudfits.testing.gcs import GCSServer, start_fake_gcs  # noqa: E402
from cloudfits.testing.process import start_or_skip  # noqa: E402


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    server = start_or_skip(lambda: start_fake_gcs(tmp_path_factory.mktemp("fake-gcs")))
    patch = pytest.MonkeyPatch()
    patch.setenv("STORAGE_EMULATOR_HOST", server.endpoint_url)
    reset_registry()
    try:
        yield server
    finally:
        server.stop()
        patch.undo()
        reset_registry()
