"""Azurite on 127.0.0.1 for the whole session, the SDK's environment pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite(
    "cloudfits.testing.conformance", "cloudfits.testing.hostile_reads", "cloudfits.testing.canaries"
)

from cloudfits.testing.azurite import (  # noqa: E402
    AzuriteServer,
    azurite_environment,
    start_azurite,
)
from cloudfits.testing.process import serving, start_or_skip  # noqa: E402


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = start_or_skip(lambda: start_azurite(tmp_path_factory.mktemp("azurite")))
    with serving(server, azurite_environment(server)):
        yield server
