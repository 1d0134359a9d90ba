"""Whole-file gzip on the local S3 server: an 18 MB image and a 50,000-row table in one
``.fits.gz``, indexed once, then read at random for a small share of its bytes.

The acceptance of issue 14: a 20x20 section of the image and the last 10 rows of the
table each read at most 10% of the compressed bytes (counted on the wire by the
recording proxy), with astropy's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.testing.gzipfits import make_gzip_fits
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

from ..astropy_compare import assert_tables_equal, table_read

pytestmark = pytest.mark.s3

BUCKET = "gzip-accept"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_gzip_fits(tmp_path_factory.mktemp("gzip-accept"))


@pytest.fixture(scope="module")
def uri(s3_server: S3Server, files: tuple[Path, Path]) -> str:
    s3_server.create_bucket(BUCKET)
    s3_server.client().upload_file(str(files[1]), BUCKET, f"data/{files[1].name}")
    return f"s3://{BUCKET}/data/{files[1].name}"


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[RecordingProxy]:
    with RecordingProxy(s3_server.endpoint_url) as p:
        yield p


def test_indexed_reads_cost_a_tenth_of_the_object_at_most(
    uri: str, files: tuple[Path, Path], proxy: RecordingProxy
) -> None:
    plain, packed = files
    compressed = packed.stat().st_size
    proxy.reset()
    index = cloudfits.build_index(f"s3://{BUCKET}/data/", endpoint_url=proxy.url)
    indexing = proxy.records
    ranged = [r for r in indexing if "range" in r.headers]  # not the listing
    # One pass: every compressed byte once, and the trailer read first.
    assert sum(r.response_bytes for r in ranged) == compressed + 8
    entry = index.entry(packed.name)
    assert entry.gzip is not None
    assert len(entry.gzip) >= 15
    f = index.open(packed.name, endpoint_url=proxy.url)
    with fits.open(plain) as hdul:
        proxy.reset()
        section = f[0].section[1030:1050, 700:720]
        section_bytes = sum(r.response_bytes for r in proxy.records)
        assert np.array_equal(section, hdul[0].data[1030:1050, 700:720])
        assert len(proxy.records) <= 2
        assert section_bytes <= compressed / 10

        proxy.reset()
        rows = f["CATALOG"].read(rows=slice(-10, None))
        rows_bytes = sum(r.response_bytes for r in proxy.records)
        assert_tables_equal(rows, table_read(plain, 1)[-10:])
        assert len(proxy.records) <= 2
        assert rows_bytes <= compressed / 10
    assert f.stats.gzip_passes == 0


def test_open_without_index_streams_once(uri: str, files: tuple[Path, Path]) -> None:
    plain, packed = files
    f = cloudfits.open(uri)
    assert f.stats.gzip_passes == 1
    assert f.stats.bytes == packed.stat().st_size + 8
    with fits.open(plain) as hdul:
        assert [h.header.tostring() for h in f] == [h.header.tostring() for h in hdul]
        assert np.array_equal(f[0].section[-20:, :20], hdul[0].data[-20:, :20])
