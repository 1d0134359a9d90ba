"""Azurite on 127.0.0.1 for the whole session, the SDK's environment pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("cloudfits.testing.conformance")

from cloudfits.plugins import reset_registry  # noqa: E402
from cloudfits.testing.azurite import AzuriteServer, start_azurite  # noqa: E402
from cloudfits.testing.process import start_or_skip  # noqa: E402


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = start_or_skip(lambda: start_azurite(tmp_path_factory.mktemp("azurite")))
    patch = pytest.MonkeyPatch()
    for name in ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        patch.delenv(name, raising=False)
    patch.setenv("AZURE_STORAGE_CONNECTION_STRING", server.connection_string)
    reset_registry()
    try:
        yield server
    finally:
        server.stop()
        patch.undo()
        reset_registry()
