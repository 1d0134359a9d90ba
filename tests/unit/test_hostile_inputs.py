"""Hostile headers and tiles: only `FitsFormatError`, naming the file, HDU and offset.

Local files stand for any store here: the checks are on the bytes, not the transport.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import cloudfits
from cloudfits import AccessDeniedError, FitsFormatError, IndexFormatError
from cloudfits.index.search import SearchExpressionError
from cloudfits.providers.registry import get_registry


def _edit_card(path: Path, key: str, value: str) -> None:
    """Rewrite the value of card ``key`` in place (same 80 bytes)."""
    data = bytearray(path.read_bytes())
    for start in range(0, len(data), 80):
        card = data[start : start + 80].decode("ascii", "replace")
        if card.startswith(f"{key:<8}= "):
            data[start : start + 80] = f"{key:<8}= {value:>20}".ljust(80).encode("ascii")
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no card {key}")


def test_low_bscale_abc_is_a_fits_format_error_naming_file_and_hdu(tmp_path: Path) -> None:
    path = tmp_path / "scaled.fits"
    hdu = fits.PrimaryHDU(np.arange(100, dtype=np.int16).reshape(10, 10))
    hdu.header["BSCALE"] = 2.0
    hdu.writeto(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"BSCALE  =")
    data[at : at + 80] = b"BSCALE  = 'abc'".ljust(80)
    path.write_bytes(bytes(data))
    f = cloudfits.open(path)
    with pytest.raises(FitsFormatError, match=r"scaled\.fits: HDU 0 at byte 0: card BSCALE"):
        f[0].section[0:2]


@pytest.mark.parametrize(
    ("key", "value", "column"),
    [("TSCAL2", "'abc'", "B"), ("TZERO1", "'q'", "A"), ("TDISP1", "'Z99'", "A")],
)
def test_low_column_cards_astropy_cannot_apply_are_fits_format_errors(
    key: str, value: str, column: str, tmp_path: Path
) -> None:
    """Table.read fails on them too (a numpy or astropy error naming nothing); here the
    error names the file, the HDU and its data, and the other columns still read."""
    path = tmp_path / "columns.fits"
    table = fits.BinTableHDU.from_columns(
        [fits.Column("A", "E", array=np.arange(3.0)), fits.Column("B", "J", array=np.arange(3))]
    )
    table.header[key] = 1
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    _edit_card(path, key, value)
    with pytest.raises(Exception):  # noqa: B017, PT011  (astropy's own answer is an error)
        Table.read(path, hdu=1)
    f = cloudfits.open(path)
    where = r"columns\.fits: HDU 1 \(data at byte 5760\): astropy cannot decode the table"
    for columns in (None, [column]):
        with pytest.raises(FitsFormatError, match=where):
            f[1].read(columns=columns)
    other = "B" if column == "A" else "A"
    assert list(f[1].read(columns=[other])[other]) == list(np.arange(3))


def _compressed(path: Path) -> None:
    image = np.arange(64 * 48, dtype=np.int32).reshape(64, 48)
    comp = fits.CompImageHDU(image, compression_type="RICE_1", tile_shape=(16, 16))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)


def test_low_ztile_zero_is_a_fits_format_error(tmp_path: Path) -> None:
    path = tmp_path / "tiles.fits"
    _compressed(path)
    _edit_card(path, "ZTILE1", "0")
    with pytest.raises(FitsFormatError, match=r"tiles\.fits: HDU 1"):
        cloudfits.open(path)[1].section[0:3, 0:3]


def test_medium_12_tile_table_is_cached_only_after_it_verifies(tmp_path: Path) -> None:
    path = tmp_path / "tiles.fits"
    _compressed(path)
    good = cloudfits.open(path)
    offset = good[1].layout.data_offset
    data = bytearray(path.read_bytes())
    data[offset + 4 : offset + 8] = (2**31 - 1).to_bytes(4, "big")  # heap offset of tile 0
    path.write_bytes(bytes(data))
    f = cloudfits.open(path)
    with pytest.raises(FitsFormatError, match="outside the heap"):
        f[1].section[40:41, 40:41]  # a tile whose own descriptor is fine
    assert f[1].compressed._descriptor_rows is None  # nothing poisoned is kept


def test_low_astropy_decompression_errors_are_fits_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "tiles.fits"
    _compressed(path)
    f = cloudfits.open(path)
    raw = f[1].raw_header
    heap = f[1].layout.data_offset + int(raw.get("THEAP", raw["NAXIS1"] * raw["NAXIS2"]))
    data = bytearray(path.read_bytes())
    data[heap : heap + 64] = b"\xff" * 64  # garbage in the first tile's RICE stream
    path.write_bytes(bytes(data))
    with pytest.raises(FitsFormatError, match=r"tiles\.fits: HDU 1 \(data at byte \d+\)"):
        cloudfits.open(path)[1].section[0:16, 0:16]


def test_low_negative_theap_is_a_fits_format_error(tmp_path: Path) -> None:
    path = tmp_path / "vla.fits"
    column = fits.Column("V", "PJ()", array=[np.arange(n) for n in range(1, 9)])
    table = fits.BinTableHDU.from_columns([column])
    table.header["THEAP"] = table.header["NAXIS1"] * table.header["NAXIS2"]
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    _edit_card(path, "THEAP", "-2880")
    with pytest.raises(FitsFormatError, match=r"vla\.fits: HDU 1.*THEAP"):
        cloudfits.open(path)[1].read(rows=slice(0, 3))


def test_medium_6_a_row_slice_costs_memory_in_the_rows_read(tmp_path: Path) -> None:
    rows = 10**9
    header = fits.BinTableHDU.from_columns([fits.Column("B", "B", array=np.zeros(1))]).header
    header["NAXIS2"] = rows
    path = tmp_path / "huge.fits"
    primary = fits.PrimaryHDU().header.tostring().encode()
    text = header.tostring().encode()
    with path.open("wb") as out:
        out.write(primary + text)
        out.truncate(len(primary) + len(text) + -(-rows // 2880) * 2880)  # sparse
    f = cloudfits.open(path)
    tracemalloc.start()
    try:
        table = f[1][0:10]
        one = f[1].read(rows=slice(rows - 3, None))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(table) == 10
    assert len(one) == 3
    assert peak < 20 * 2**20, peak  # the whole table's row numbers would be 8 GB


def test_low_control_characters_in_messages_never_come_from_cards(tmp_path: Path) -> None:
    path = tmp_path / "a.fits"
    fits.PrimaryHDU(np.zeros((2, 2), dtype=np.int16)).writeto(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"NAXIS1  =")
    data[at + 12 : at + 13] = b"\x1b"
    path.write_bytes(bytes(data))
    with pytest.raises(FitsFormatError) as caught:
        cloudfits.open(path)
    assert re.search(r"a\.fits", str(caught.value))


@pytest.mark.parametrize(
    "bad", ["a\x1bb.fits", "a\x85.fits", "a\x7f.fits", "a\u202e.fits", "a\u2028"]
)
def test_low_control_characters_in_index_paths_are_refused(bad: str, tmp_path: Path) -> None:
    fits.PrimaryHDU(np.zeros(3)).writeto(tmp_path / "a.fits")
    index = cloudfits.build_index(str(tmp_path))
    document = index.to_dict()
    document["files"][0]["path"] = bad
    with pytest.raises(IndexFormatError, match="control characters"):
        cloudfits.FitsIndex.from_dict(document)
    entry = dataclasses.replace(index.files[0], path=bad)
    with pytest.raises(IndexFormatError, match="control characters"):
        cloudfits.FitsIndex.from_bytes(cloudfits.FitsIndex(index.data_uri, [entry]).to_parquet())
    document["files"][0]["path"] = "ok/é.fits"  # other non-ASCII names are fine
    assert cloudfits.FitsIndex.from_dict(document).paths == ["ok/é.fits"]


def _parquet_with(tmp_path: Path, column: str, values: list[int]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fits.HDUList([fits.PrimaryHDU(np.zeros(3)), fits.ImageHDU(np.zeros(4))]).writeto(
        tmp_path / "a.fits"
    )
    table = pq.read_table(io.BytesIO(cloudfits.build_index(str(tmp_path)).to_parquet()))
    at = table.schema.get_field_index(column)
    table = table.set_column(at, column, pa.array(values, pa.int64()))
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("column", "values"),
    [("data_offset", [2880, 2**63 - 1000]), ("data_size", [24, 2**63 - 2880]),
     ("header_offset", [0, -(2**63)])],
)  # fmt: skip
def test_low_parquet_layout_checks_do_not_wrap_at_2_63(
    column: str, values: list[int], tmp_path: Path
) -> None:
    with pytest.raises(IndexFormatError, match=r"outside \[0, 2\*\*62\]|inconsistent"):
        assert cloudfits.FitsIndex.from_bytes(_parquet_with(tmp_path, column, values)).paths


def test_medium_7_parquet_reader_is_bounded_before_decoding(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fits.PrimaryHDU(np.zeros(3)).writeto(tmp_path / "a.fits")
    table = pq.read_table(io.BytesIO(cloudfits.build_index(str(tmp_path)).to_parquet()))
    bomb = pa.concat_tables([table] * 30_000)  # one row, repeated: run-length coded
    out = io.BytesIO()
    pq.write_table(bomb, out, compression="zstd", row_group_size=30_000)
    data = out.getvalue()
    assert len(data) < 30_000  # under a byte a row
    tracemalloc.start()
    try:
        with pytest.raises(IndexFormatError, match=r"rows in .* bytes"):
            cloudfits.FitsIndex.from_bytes(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak


def test_medium_10_local_root_cannot_be_escaped_by_swapping_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    fits.PrimaryHDU(np.zeros(3)).writeto(root / "d" / "a.fits")
    (outside / "a.fits").write_bytes(b"SECRET" * 1000)
    provider = get_registry().provider(
        get_registry().by_scheme("file"), "file", {"root": str(root)}
    )
    assert provider.get_range("d/a.fits", 0, 6) == b"SIMPLE"
    resolve = provider._resolve

    def then_swap(path: str) -> str:
        # The attacker's move, exactly between the check and the open.
        resolved = resolve(path)
        (root / "d").rename(root / "d-old")
        (root / "d").symlink_to(outside)
        return resolved

    monkeypatch.setattr(provider, "_resolve", then_swap)
    with pytest.raises(AccessDeniedError, match="outside the root"):
        provider.get_range("d/a.fits", 0, 6)


def test_low_a_looping_symlink_does_not_stop_build_index_collect(tmp_path: Path) -> None:
    fits.PrimaryHDU(np.zeros(3)).writeto(tmp_path / "a.fits")
    (tmp_path / "loop1.fits").symlink_to(tmp_path / "loop2.fits")
    (tmp_path / "loop2.fits").symlink_to(tmp_path / "loop1.fits")
    (tmp_path / "broken.fits").symlink_to(tmp_path / "absent.fits")
    index = cloudfits.build_index(str(tmp_path), errors="collect")
    assert index.paths == ["a.fits"]


@pytest.mark.parametrize(
    "expression",
    ["(", "NAXIS ==", "NAXIS == 99999999999999999999999999999", "NAXIS < 1j", "NAXIS",
     "NAXIS == '\x00'", "(" * 400 + "NAXIS == 1" + ")" * 400, "NAXIS in ('a', [1])",
     "__import__('os')", "NAXIS == -'x'"],
)  # fmt: skip
def test_low_search_expressions_raise_search_expression_error_only(
    expression: str, tmp_path: Path
) -> None:
    fits.PrimaryHDU(np.zeros((2, 3))).writeto(tmp_path / "a.fits")
    index = cloudfits.build_index(str(tmp_path))
    with contextlib.suppress(SearchExpressionError):  # any other exception fails
        index.search(expression)


@pytest.mark.parametrize(
    "naxis_card", ["NAXIS                        2", " AXIS   =                    2"]
)
def test_a_primary_header_without_naxis_in_an_index_is_presented_not_a_key_error(
    naxis_card: str,
) -> None:
    """An index's primary header whose NAXIS card is damaged, followed by a table:
    astropy's EXTEND rule (insert after the last NAXISn) has no card to go after.
    The header is still presented with EXTEND, and a summary is given or refused as
    FITS (never a KeyError)."""
    import json

    from cloudfits import FitsIndex

    def cards(*texts: str) -> str:
        return "".join(t.ljust(80) for t in (*texts, "END"))

    primary = cards(
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        naxis_card,
        "NAXIS1  =                   10",
        "NAXIS2  =                   10",
    )
    table = cards(
        "XTENSION= 'BINTABLE'",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                    4",
        "NAXIS2  =                    3",
        "PCOUNT  =                    0",
        "GCOUNT  =                    1",
        "TFIELDS =                    1",
        "TFORM1  = 'J       '",
        "TTYPE1  = 'X       '",
    )
    hdus = [
        {"header_offset": 0, "data_offset": 2880, "data_size": 0, "header": primary},
        {"header_offset": 2880, "data_offset": 5760, "data_size": 12, "header": table},
    ]
    document = {
        "format": "cloudfits-index",
        "version": 1,
        "generator": "test",
        "created": "2026-01-01T00:00:00+00:00",
        "data_uri": "s3://bucket/prefix",
        "files": [{"path": "a.fits", "size": 8640, "etag": "abc", "hdus": hdus}],
    }
    index = FitsIndex.from_bytes(json.dumps(document).encode(), source="idx.json")
    f = index.open("a.fits")
    assert f[0].header["EXTEND"] is True
    for hdu in f:
        with contextlib.suppress(FitsFormatError):
            assert hdu.summary()[0] == hdu.number
