"""The cloud-fits tutorial, end to end, on a TESS-layout cube in a local S3 server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import cloudfits
from cloudfits.cli import index_main
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

from ..conftest import TESS_FRAMES, TESS_SHAPE

INDEX_BUCKET = "tess-fits-cloud-index"


def _seed_command(cube: Path, data_uri: str) -> list[str]:
    return [
        "--provider", "s3",
        "--index-bucket-name", INDEX_BUCKET,
        "--fits-files-directory", str(cube.parent),
        "--data-bucket-path", data_uri,
    ]  # fmt: skip


def test_tutorial_flow(tess_bucket: str, tess_cube: Path) -> None:
    assert index_main(_seed_command(tess_cube, tess_bucket)) == 0
    index = cloudfits.download_index(INDEX_BUCKET, requester_pays=True)
    assert index.data_uri == tess_bucket
    assert index.paths == [tess_cube.name]
    cell = index.headers[2][0, 10]
    with fits.open(tess_cube) as hdul:
        assert cell == hdul[2].data[0][10]
        f = index.open(tess_cube.name)
        assert f[0].header == hdul[0].header
        assert np.array_equal(f[1].section[5:9, 7:12, :, 0], hdul[1].data[5:9, 7:12, :, 0])
        table = f[2].read(rows=slice(0, 10), columns=["TSTART", "TSTOP"])
        expected = Table.read(hdul[2])[0:10]
        assert np.array_equal(table["TSTART"], expected["TSTART"])
        assert np.array_equal(table["TSTOP"], expected["TSTOP"])


def test_console_script_runs_the_tutorial_command(
    tess_bucket: str, tess_cube: Path, s3_server: S3Server
) -> None:
    script = Path(sys.executable).parent / "cloudfits-index"
    result = subprocess.run(
        [str(script), *_seed_command(tess_cube, tess_bucket), "--index-name", "cli.json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"s3://{INDEX_BUCKET}/cli.json" in result.stdout
    index = cloudfits.load_index(f"s3://{INDEX_BUCKET}/cli.json")
    assert index.paths == [tess_cube.name]


def test_uri_form_indexes_a_remote_prefix(tess_bucket: str, tess_cube: Path) -> None:
    code = index_main(
        [tess_bucket + "/", "--index-uri", f"s3://{INDEX_BUCKET}/remote.json.gz", "--quiet"]
    )
    assert code == 0
    remote = cloudfits.load_index(f"s3://{INDEX_BUCKET}/remote.json.gz")
    local = cloudfits.build_index(tess_cube.parent, data_uri=tess_bucket)
    assert remote.data_uri == tess_bucket
    assert [f.hdus for f in remote.files] == [f.hdus for f in local.files]
    assert remote.files[0].etag
    assert remote.files[0].size == tess_cube.stat().st_size


def test_cutout_makes_one_request_per_byte_run(
    tess_bucket: str, tess_cube: Path, s3_server: S3Server
) -> None:
    """A 10x10-pixel, all-frames cutout: exactly the 10 runs, no byte outside them."""
    cloudfits.build_index(tess_cube.parent, data_uri=tess_bucket).save(
        f"s3://{INDEX_BUCKET}/exact.json"
    )
    index = cloudfits.load_index(f"s3://{INDEX_BUCKET}/exact.json")
    _rows, cols = TESS_SHAPE
    row_bytes = cols * TESS_FRAMES * 2 * 4
    run_bytes = 10 * TESS_FRAMES * 2 * 4
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        f = index.open(tess_cube.name, endpoint_url=proxy.url, requester_pays=True)
        cutout = f[1].section[20:30, 30:40, :, :]
        records = proxy.records
    data_offset = f[1].layout.data_offset
    expected_ranges = sorted(
        f"bytes={data_offset + (20 + i) * row_bytes + 30 * TESS_FRAMES * 8}-"
        f"{data_offset + (20 + i) * row_bytes + 30 * TESS_FRAMES * 8 + run_bytes - 1}"
        for i in range(10)
    )
    assert sorted(r.headers["range"] for r in records) == expected_ranges
    assert all(r.method == "GET" and r.status == 206 for r in records)
    assert sum(r.response_bytes for r in records) == 10 * run_bytes
    assert f.stats.requests == 10
    assert f.stats.bytes == 10 * run_bytes
    with fits.open(tess_cube) as hdul:
        expected = hdul[1].data[20:30, 30:40, :, :]
    assert cutout.shape == (10, 10, TESS_FRAMES, 2)
    assert np.array_equal(cutout, expected)


def test_remote_indexing_reads_headers_only(tess_bucket: str, s3_server: S3Server) -> None:
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        stats = cloudfits.ReadStats()
        index = cloudfits.build_index(tess_bucket + "/", stats=stats, endpoint_url=proxy.url)
        records = proxy.records
    hdus = sum(len(f.hdus) for f in index.files)
    gets = [r for r in records if r.method == "GET" and "range" in r.headers]
    assert hdus == 3
    assert stats.requests == len(gets) <= hdus
    per_hdu = sum(r.response_bytes for r in gets) / hdus
    assert per_hdu < 64 * 1024
    assert stats.bytes == sum(r.response_bytes for r in gets)


@pytest.mark.parametrize("requester_pays", [True, False])
def test_requester_pays_header_on_every_request_and_only_then(
    requester_pays: bool, tess_bucket: str, tess_cube: Path, s3_server: S3Server
) -> None:
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        options = {"endpoint_url": proxy.url, "requester_pays": requester_pays}
        index = cloudfits.build_index(tess_bucket + "/", **options)
        uri = f"s3://{INDEX_BUCKET}/rp-{requester_pays}.json"
        index.save(uri, **options)
        loaded = cloudfits.load_index(uri, **options)
        f = loaded.open(tess_cube.name, **options)
        f[1].section[0:2, 0:3, 0, :]
        f[2].read(rows=[0, 3], columns=["TSTART"])
        cloudfits.open(f"{tess_bucket}/{tess_cube.name}", **options)[2].read(rows=0)
        records = proxy.records
    assert {"GET", "HEAD", "PUT"} <= {r.method for r in records}
    assert len(records) >= 10
    for record in records:
        sent = record.headers.get("x-amz-request-payer")
        assert sent == ("requester" if requester_pays else None), record
