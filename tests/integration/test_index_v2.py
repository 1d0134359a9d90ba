"""Index format version 2 (Parquet): round trips, lazy loading by range reads, refusals."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.scale_index import make_index
from cloudfits import FitsIndex, IndexFormatError, build_index, load_index
from cloudfits.index.parquet import LAYOUT_COLUMNS, METADATA_KEY, index_to_parquet
from cloudfits.index.parquet_store import ParquetFiles
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

from ..conftest import CORPUS_DIR

BUCKET = "index-v2"


@pytest.fixture(scope="module")
def corpus_index() -> FitsIndex:
    return build_index(CORPUS_DIR)


@pytest.fixture(scope="module")
def generated() -> FitsIndex:
    return make_index(1500)


def _parquet(index: FitsIndex, **kwargs: Any) -> bytes:
    return index_to_parquet(index, **kwargs)


# -- round trips -------------------------------------------------------------------------


def test_round_trip_of_the_corpus_index(corpus_index: FitsIndex, tmp_path: Path) -> None:
    data = corpus_index.to_parquet()
    assert data[:4] == data[-4:] == b"PAR1"
    loaded = FitsIndex.from_bytes(data, source="corpus.parquet")
    assert loaded.to_dict() == corpus_index.to_dict()
    assert loaded.to_bytes() == corpus_index.to_bytes()
    # Through save() and load_index(): by suffix, and by content under another name.
    corpus_index.save(str(tmp_path / "i.parquet"))
    assert load_index(tmp_path / "i.parquet").to_dict() == corpus_index.to_dict()
    (tmp_path / "renamed.idx").write_bytes((tmp_path / "i.parquet").read_bytes())
    assert load_index(tmp_path / "renamed.idx").to_dict() == corpus_index.to_dict()
    # And back to version 1.
    loaded.save(str(tmp_path / "back.json"))
    assert load_index(tmp_path / "back.json").to_dict() == corpus_index.to_dict()


def test_round_trip_of_the_tess_cube_index(tess_cube: Path) -> None:
    index = build_index(tess_cube.parent, data_uri="s3://stpubdata/tess/public/mast")
    loaded = FitsIndex.from_bytes(index.to_parquet())
    assert loaded.to_dict() == index.to_dict()


def test_lazy_api_equals_the_eager_one(generated: FitsIndex) -> None:
    loaded = FitsIndex.from_bytes(_parquet(generated, row_group_size=500))
    assert isinstance(loaded.source, ParquetFiles)
    assert len(loaded) == len(generated) == 1500
    assert loaded.paths == generated.paths
    some = generated.paths[777]
    assert some in loaded
    assert "nope.fits" not in loaded
    assert loaded.entry(some) == generated.entry(some)
    with pytest.raises(KeyError, match="nope"):
        loaded.entry("nope.fits")
    assert [h.header for h in loaded.headers] == [h.header for h in generated.headers]
    assert loaded.files == generated.files  # reads every header now
    assert repr(loaded) == repr(generated)


# -- loading through S3 with range requests --------------------------------------------


def _chunk_bytes(data: bytes, columns: list[str], groups: list[int] | None = None) -> int:
    md = pq.read_metadata(io.BytesIO(data))
    names = md.schema.to_arrow_schema().names
    total = 0
    for g in range(md.num_row_groups) if groups is None else groups:
        for name in columns:
            total += md.row_group(g).column(names.index(name)).total_compressed_size
    return total


@pytest.mark.s3
def test_load_reads_footer_and_layout_only(generated: FitsIndex, s3_server: S3Server) -> None:
    data = _parquet(generated, row_group_size=600)
    s3_server.create_bucket(BUCKET)
    s3_server.client().put_object(Bucket=BUCKET, Key="gen.parquet", Body=data)
    md = pq.read_metadata(io.BytesIO(data))
    assert md.num_row_groups == 8  # 3 HDUs a file, whole files only: 200 files a group
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        index = load_index(f"s3://{BUCKET}/gen.parquet", endpoint_url=proxy.url)
        load = proxy.records
        path = generated.paths[700]  # row group 3
        header = index.open(path)[1].header
        opened = proxy.records[len(load) :]
    layout = _chunk_bytes(data, list(LAYOUT_COLUMNS))
    headers = _chunk_bytes(data, ["header"])
    loaded_bytes = sum(r.response_bytes for r in load)
    # HEAD, the 64 KiB tail, the rest of the footer, then the layout chunks (one span
    # per row group, all at once).
    footer_requests = 1 if md.serialized_size + 8 <= 64 * 1024 else 2
    assert [r.method for r in load[:2]] == ["HEAD", "GET"]
    assert len(load) == 1 + footer_requests + md.num_row_groups
    assert loaded_bytes <= 64 * 1024 + md.serialized_size + layout + 4096 * md.num_row_groups
    assert loaded_bytes < len(data) / 3
    assert headers > len(data) / 3
    # Opening one file reads one row group's header chunk, in one request.
    assert len(opened) == 1
    assert opened[0].response_bytes == _chunk_bytes(data, ["header"], [3])
    assert header == fits.Header.fromstring(generated.entry(path).hdus[1].header)
    # A second file of the same row group costs nothing.
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        again = load_index(f"s3://{BUCKET}/gen.parquet", endpoint_url=proxy.url)
        again.entry(generated.paths[700])
        before = proxy.request_count
        again.entry(generated.paths[701])
        assert proxy.request_count == before


@pytest.mark.s3
def test_cutouts_through_a_v2_index_equal_astropy(
    tess_cube: Path, tess_bucket: str, s3_server: S3Server
) -> None:
    index = build_index(tess_bucket + "/")
    uri = "s3://tess-fits-cloud-index/cube-index.parquet"
    index.save(uri)
    loaded = load_index(uri)
    f = loaded.open(tess_cube.name)
    with fits.open(tess_cube) as hdul:
        expected = hdul[1].data[10:20, 5:15, :, 0]
        rows = hdul[2].data[3:7]
        got = f[1].section[10:20, 5:15, :, 0]
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype.newbyteorder("=")
        table = f[2].read(rows=slice(3, 7))
    # Text columns come back as Table.read gives them (bytes), not as HDU.data (str).
    expected_rows = Table.read(tess_cube, hdu=2)[3:7]
    assert table.colnames == expected_rows.colnames == rows.names
    for name in expected_rows.colnames:
        np.testing.assert_array_equal(np.asarray(table[name]), np.asarray(expected_rows[name]))


# -- refusals ------------------------------------------------------------------------------


def _rewrite(data: bytes, change: Callable[[pa.Table, dict[str, Any]], pa.Table]) -> bytes:
    table = pq.read_table(io.BytesIO(data))
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    table = change(table, meta)
    schema_meta = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(meta).encode()}
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(schema_meta), sink)
    return sink.getvalue()


def _set(column: str, row: int, value: Any) -> Callable[[pa.Table, dict[str, Any]], pa.Table]:
    def change(table: pa.Table, meta: dict[str, Any]) -> pa.Table:
        values = table.column(column).to_pylist()
        values[row] = value
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, pa.array(values, table.schema.field(index).type))

    return change


def _meta(key: str, value: Any) -> Callable[[pa.Table, dict[str, Any]], pa.Table]:
    def change(table: pa.Table, meta: dict[str, Any]) -> pa.Table:
        meta[key] = value
        return table

    return change


@functools.cache
def _small() -> bytes:
    return make_index(20).to_parquet()


@pytest.fixture(scope="module")
def small() -> bytes:
    return _small()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_meta("version", 3), "version 3 is not supported"),
        (_meta("version", 1), "version 1 is not supported"),
        (_meta("format", "other"), "not a cloudfits-index"),
        (_meta("data_uri", 5), "'data_uri' must be str"),
        (_set("path", 0, "../secret.fits"), "must be relative"),
        (_set("path", 0, "/abs.fits"), "must be relative"),
        (_set("path", 0, "a//b.fits"), "must be relative"),
        (_set("path", 3, "zzz.fits"), "listed twice or out of order"),
        (_set("data_offset", 4, 2880 * 3 + 1), "inconsistent layout"),
        (_set("header_offset", 1, 0), "inconsistent layout"),
        (_set("data_size", 1, 10**12), "inconsistent layout"),
        (_set("size", 1, 1), "size differs"),
        (_set("hdu", 2, 5), "numbered"),
        (_set("etag", 2, "other"), "etag differs"),
    ],
)
def test_rejects_a_bad_document(small: bytes, change: Any, message: str) -> None:
    with pytest.raises(IndexFormatError, match=message) as info:
        FitsIndex.from_bytes(_rewrite(small, change), source="bad.parquet")
    assert "bad.parquet" in str(info.value)


@pytest.mark.parametrize(
    ("row", "header", "message"),
    [
        (1, "SIMPLE  =                    T" + " " * 50, "ending with END"),
        (1, "X" * 79 + "\u2603" + "END".ljust(80), "not Latin-1"),
        (1, "END".ljust(80), "after the header's blocks"),
    ],
)
def test_bad_header_is_refused_when_read(small: bytes, row: int, header: str, message: str) -> None:
    index = FitsIndex.from_bytes(_rewrite(small, _set("header", row, header)), source="h.parquet")
    with pytest.raises(IndexFormatError, match=message):
        index.entry(index.paths[0])


def test_rejects_missing_or_mistyped_columns(small: bytes) -> None:
    dropped = _rewrite(small, lambda t, m: t.drop_columns(["data_size"]))
    with pytest.raises(IndexFormatError, match="missing column 'data_size'"):
        FitsIndex.from_bytes(dropped)
    retyped = _rewrite(
        small, lambda t, m: t.set_column(5, "header_offset", t["header_offset"].cast(pa.string()))
    )
    with pytest.raises(IndexFormatError, match="must hold integers"):
        FitsIndex.from_bytes(retyped)


@pytest.mark.parametrize("cut", [4, 12, 100, 1000, -1, -5, -9, -100, -2000])
def test_truncated_document_is_refused(small: bytes, cut: int, tmp_path: Path) -> None:
    data = small[:cut]
    with pytest.raises(IndexFormatError, match=r"t\.parquet"):
        FitsIndex.from_bytes(data, source="t.parquet")
    (tmp_path / "t.parquet").write_bytes(data)
    with pytest.raises(IndexFormatError, match=r"t\.parquet"):
        load_index(tmp_path / "t.parquet")


def _use(data: bytes) -> None:
    try:
        index = FitsIndex.from_bytes(data, source="fuzz.parquet")
        for path in index.paths:
            index.entry(path)
        index.search("NAXIS == 2")
    except IndexFormatError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=4),
    truncate=st.one_of(st.none(), st.integers(1, 10**9)),
)
def test_damaged_documents_raise_only_index_format_error(
    edits: list[tuple[int, int]], truncate: int | None
) -> None:
    data = bytearray(_small())
    for at, value in edits:
        data[at % len(data)] = value
    if truncate is not None:
        data = data[: truncate % len(data)]
    _use(bytes(data))


_DAMAGED_LEVEL_HISTOGRAM = [(-17306, 56), (-10912, 98)]
"""Two bytes of a small index's footer (counted from its end) that make pyarrow 26
abort the process when Python asks for a column chunk's metadata ("Definition level
histogram size mismatch"), found by the test above."""


def test_damaged_column_metadata_is_an_error_not_an_abort(tmp_path: Path) -> None:
    data = bytearray(_small())
    for at, value in _DAMAGED_LEVEL_HISTOGRAM:
        data[at] = value
    path = tmp_path / "damaged.parquet"
    path.write_bytes(bytes(data))
    # In a child process: on failure, pyarrow would take the test run down with it.
    code = (
        "import sys\n"
        "from cloudfits import FitsIndex, IndexFormatError\n"
        "try:\n"
        f"    data = open({str(path)!r}, 'rb').read()\n"
        "    index = FitsIndex.from_bytes(data, source='damaged.parquet')\n"
        "    for path in index.paths:\n"
        "        index.entry(path)\n"
        "    index.search('UNCPR000 == 1')  # reads the damaged keyword column\n"
        "except IndexFormatError as err:\n"
        "    print(err)\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert "damaged.parquet" in done.stdout
    assert "broken Parquet" in done.stdout
