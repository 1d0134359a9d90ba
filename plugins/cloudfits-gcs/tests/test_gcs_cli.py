"""``cloudfits index gs://...`` with the flags made from GCSConfig, on both emulators."""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.cli import command_parser, main
from cloudfits.testing.gcs import GCSServer
from cloudfits.testing.proxy import RecordingProxy

BUCKET = "cli-flags"


def _fits_bytes() -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.arange(12, dtype=">i4").reshape(3, 4)).writeto(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bucket(gcs_server: GCSServer) -> Any:
    gcs_server.create_bucket(BUCKET)
    return gcs_server.client().bucket(BUCKET)


def test_index_with_billing_project_sends_it_on_every_request(
    bucket: Any, gcs_server: GCSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"bp-{uuid.uuid4().hex[:8]}"
    for name in ("a.fits", "b.fits"):
        bucket.blob(f"{prefix}/{name}").upload_from_string(_fits_bytes())
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        code = main(
            [
                "index",
                f"gs://{BUCKET}/{prefix}/",
                "--billing-project", "payer-cli",
                "--endpoint-url", proxy.url,
                "--index-uri", f"gs://{BUCKET}/{prefix}/index.json",
                "--quiet",
            ]
        )  # fmt: skip
        records = proxy.records
    assert code == 0, capsys.readouterr().err
    # Listing, the header reads and the index upload: all billed to the project.
    assert {r.method for r in records} >= {"GET", "POST"}
    for record in records:
        assert "userProject=payer-cli" in record.target, (record.method, record.target)
    index = cloudfits.load_index(
        f"gs://{BUCKET}/{prefix}/index.json", endpoint_url=gcs_server.endpoint_url
    )
    assert index.paths == ["a.fits", "b.fits"]


def test_help_lists_the_gcs_flags_under_gcs() -> None:
    text = command_parser("index").format_help()
    section = text.split("gcs provider options:", 1)[1].split("\n\n", 2)
    shown = "\n".join(section[:2])
    assert "--billing-project" in shown
    assert "--project" in shown
    assert "--endpoint-url" in shown  # shown under s3, named in gcs's description
