"""Issue 15 for gs://: every answer goes through the engine's check, a lying server never wins.

A `FaultProxy` with hostile answers sits between the provider and fake-gcs-server.
Reads are compared with astropy reading the same local file; each is exact or a
documented error, and none outlives the retry deadline (`HostileReadTests`).
gcp-storage-emulator names no generation in its answers (a pinned read is then
compared with the object's metadata, which the proxy would mangle too): the hostile
runs skip there, saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudfits_gcs.provider import GCSProvider

from cloudfits.testing.gcs import GCP_STORAGE_EMULATOR, GCSServer
from cloudfits.testing.hostile_reads import HostileReadTests, HostileStore
from cloudfits.testing.proxy import RequestRecord

BUCKET = "hostile"
NO_GENERATION = (
    "gcp-storage-emulator names no generation in its answers; the hostile runs use"
    " fake-gcs-server, which does, as GCS does"
)


class TestGCSHostile(HostileReadTests):
    provider_class = GCSProvider
    seed = 11
    report_name = "gcs"
    head_direct = True  # the object's metadata is a GET, which the proxy would mangle

    @pytest.fixture(scope="class")
    @classmethod
    def hostile_store(cls, gcs_server: GCSServer, local: Path) -> HostileStore:
        gcs_server.create_bucket(BUCKET)
        gcs_server.client().bucket(BUCKET).blob("data/h.fits").upload_from_filename(str(local))
        unfaithful = NO_GENERATION if gcs_server.name == GCP_STORAGE_EMULATOR else ""
        return HostileStore(f"gs://{BUCKET}/data/h.fits", gcs_server.endpoint_url, unfaithful)

    def options(self, root: str) -> dict[str, Any]:
        return {"endpoint_url": root}

    def is_read(self, record: RequestRecord) -> bool:
        return "alt=media" in record.target

    def pinned(self, record: RequestRecord, etag: str) -> bool:
        return f"generation={etag}" in record.target

    test_high_2_3_gcs_answers_go_through_the_engines_check = (
        HostileReadTests.answers_go_through_the_engines_check
    )
    test_high_2_3_medium_4_hostile_gcs_reads_are_exact_or_documented_errors = (
        HostileReadTests.hostile_reads_are_exact_or_documented_errors
    )
    test_medium_4_a_one_byte_a_second_object_cannot_keep_a_read_alive = (
        HostileReadTests.one_byte_a_second_cannot_keep_a_read_alive
    )
    test_zz_report = HostileReadTests.report
