"""Issue 15 for az://: every answer goes through the engine's check, a lying server never wins.

A `FaultProxy` with hostile answers sits between the provider and Azurite. Reads are
compared with astropy reading the same local file; each is exact or a documented
error, and none outlives the retry deadline (`HostileReadTests`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudfits_azure.provider import AzureProvider

from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.hostile_reads import HostileReadTests, HostileStore

CONTAINER = "hostile"


class TestAzureHostile(HostileReadTests):
    provider_class = AzureProvider
    seed = 7
    report_name = "azure"
    secrets = (ACCOUNT_KEY,)

    @pytest.fixture(scope="class")
    @classmethod
    def hostile_store(cls, azurite: AzuriteServer, local: Path) -> HostileStore:
        azurite.put_blob(CONTAINER, "data/h.fits", local.read_bytes())
        upstream = azurite.account_url.rsplit("/", 1)[0]
        return HostileStore(f"az://{CONTAINER}/data/h.fits", upstream)

    def options(self, root: str) -> dict[str, Any]:
        return {"account_url": f"{root}/{ACCOUNT_NAME}", "account_key": ACCOUNT_KEY}

    test_high_2_3_azure_answers_go_through_the_engines_check = (
        HostileReadTests.answers_go_through_the_engines_check
    )
    test_high_2_3_medium_4_hostile_azure_reads_are_exact_or_documented_errors = (
        HostileReadTests.hostile_reads_are_exact_or_documented_errors
    )
    test_medium_4_a_one_byte_a_second_blob_cannot_keep_a_read_alive = (
        HostileReadTests.one_byte_a_second_cannot_keep_a_read_alive
    )
    test_zz_report = HostileReadTests.report
