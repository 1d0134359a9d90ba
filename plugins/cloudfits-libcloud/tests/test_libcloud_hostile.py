"""Issue 15 for libcloud+azure_blobs://: every answer goes through the engine's check.

A `FaultProxy` with hostile answers sits between the Azure Blobs driver and Azurite. Reads are
compared with astropy reading the same local file; each is exact or a documented
error, and none outlives the retry deadline (`HostileReadTests`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from cloudfits_libcloud.provider import CheckedLibcloudProvider

from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.hostile_reads import HostileReadTests, HostileStore

CONTAINER = "hostile"


class TestLibcloudHostile(HostileReadTests):
    provider_class = CheckedLibcloudProvider
    seed = 13
    report_name = "libcloud-azure_blobs"
    secrets = (ACCOUNT_KEY,)
    read_timeout: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(scope="class")
    @classmethod
    def hostile_store(cls, azurite: AzuriteServer, local: Path) -> HostileStore:
        azurite.put_blob(CONTAINER, "data/h.fits", local.read_bytes())
        upstream = azurite.account_url.rsplit("/", 1)[0]
        return HostileStore(f"libcloud+azure_blobs://{CONTAINER}/data/h.fits", upstream)

    def options(self, root: str) -> dict[str, Any]:
        return {
            "key": ACCOUNT_NAME,
            "secret": ACCOUNT_KEY,
            "endpoint_url": f"{root}/{ACCOUNT_NAME}",
        }

    test_high_2_3_libcloud_answers_go_through_the_engines_check = (
        HostileReadTests.answers_go_through_the_engines_check
    )
    test_high_2_3_medium_4_hostile_libcloud_reads_are_exact_or_documented_errors = (
        HostileReadTests.hostile_reads_are_exact_or_documented_errors
    )
    test_medium_4_a_one_byte_a_second_blob_cannot_keep_a_read_alive = (
        HostileReadTests.one_byte_a_second_cannot_keep_a_read_alive
    )
    test_zz_report = HostileReadTests.report
