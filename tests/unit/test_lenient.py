"""cloudfits is exactly as lenient as astropy: one test per rule astropy applies on reading.

Each test writes a small file that breaks one rule of the FITS standard the way real
files do, and checks that cloudfits opens what astropy opens, with the headers
astropy presents, the same data, ``Table.read``'s tables, and astropy's warning
category where astropy warns.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

import cloudfits
from cloudfits.cli.main import main
from cloudfits.fits.geometry import HDUKind

from ..conftest import CORPUS_DIR

KINDS = {
    fits.GroupsHDU: HDUKind.GROUPS,
    fits.PrimaryHDU: HDUKind.PRIMARY,
    fits.ImageHDU: HDUKind.IMAGE,
    fits.BinTableHDU: HDUKind.BINTABLE,
    fits.TableHDU: HDUKind.TABLE,
}


def _bytes(*hdus: object) -> bytes:
    out = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(out)
    return out.getvalue()


def _table() -> fits.BinTableHDU:
    names = np.array(["a", "", "ccc"])
    return fits.BinTableHDU(Table({"name": names, "x": [1.0, np.nan, 3.0]}), name="T")


def _quiet_astropy(path: Path) -> fits.HDUList:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fits.open(path, memmap=False)


def assert_as_astropy(path: Path) -> cloudfits.RemoteFITS:
    """Every HDU of ``path`` as astropy gives it: kind, header, data, Table.read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        remote = cloudfits.open(path)
        hdul = fits.open(path, memmap=False)
        assert len(remote) == len(hdul)
        for number, expected in enumerate(hdul):
            got = remote[number]
            assert got.header.tostring() == expected.header.tostring(), number
            kind = next((k for c, k in KINDS.items() if isinstance(expected, c)), None)
            assert got.kind is (kind or HDUKind.NONSTANDARD), number
            if (got.kind.is_table or got.kind is HDUKind.GROUPS) and expected.data is not None:
                want = Table.read(path, hdu=number)
                table = got.read()
                assert table.colnames == want.colnames
                for name in want.colnames:
                    assert table[name].dtype == want[name].dtype, name
                    assert table[name].unit == want[name].unit, name
                    assert np.array_equal(
                        np.ma.getmaskarray(table[name]), np.ma.getmaskarray(want[name])
                    ), name
            elif expected.data is not None and got.shape:
                data = got.section[...]
                assert data.dtype == expected.data.dtype.newbyteorder("=")
                assert np.array_equal(data, expected.data, equal_nan=True)
    return remote


def test_simple_card_in_an_extension_does_not_make_it_primary(tmp_path: Path) -> None:
    table = _table()
    table.header["SIMPLE"] = True  # as Fermi LAT catalogs' extensions carry
    table.header["EXTEND"] = True
    path = tmp_path / "fermi-like.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU(), table))
    remote = assert_as_astropy(path)
    assert remote[1].kind is HDUKind.BINTABLE
    assert isinstance(remote[1].read(), Table)


def test_tab_in_a_history_card(tmp_path: Path) -> None:
    data = bytearray(_bytes(fits.PrimaryHDU(), _table()))
    at = data.index(b"END" + b" " * 77)
    data[at : at + 160] = b"HISTORY OS Description:\tLinux".ljust(80) + b"END".ljust(80)
    path = tmp_path / "tab.fits"
    path.write_bytes(bytes(data))
    assert_as_astropy(path)
    with pytest.warns(VerifyWarning, match="Unprintable"):  # where astropy warns: on output
        cloudfits.open(path)[0].header.tostring()
    index = cloudfits.build_index(tmp_path)  # errors="raise": nothing to raise
    assert index.paths == ["tab.fits"]
    assert "\t" in index.open("tab.fits")[0].header["HISTORY"][0]


def test_latin1_byte_in_a_header_is_read_as_astropy_reads_it(tmp_path: Path) -> None:
    header = fits.Header([("OBSERVER", "Muller")])
    data = bytearray(_bytes(fits.PrimaryHDU(header=header)))
    at = data.index(b"Muller")
    data[at + 1] = 0xFC  # u-umlaut in Latin-1, as written by some pipelines
    path = tmp_path / "latin1.fits"
    path.write_bytes(bytes(data))
    assert_as_astropy(path)


@pytest.mark.parametrize("extend", [None, False])
def test_primary_header_gets_extend_before_extensions(tmp_path: Path, extend: bool | None) -> None:
    data = bytearray(_bytes(fits.PrimaryHDU(), _table()))
    at = data.index(b"EXTEND  =")
    card = b" " * 80 if extend is None else b"EXTEND  =                    F".ljust(80)
    data[at : at + 80] = card
    path = tmp_path / "noextend.fits"
    path.write_bytes(bytes(data))
    remote = assert_as_astropy(path)
    assert remote[0].header["EXTEND"] is True


def test_empty_text_cells_are_masked_and_text_is_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty-cells.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU(), _table()))
    assert_as_astropy(path)
    got = cloudfits.open(path)[1].read()
    assert list(got["name"].mask) == [False, True, False]  # Table.read's mask_invalid
    assert list(got["x"].mask) == [False, True, False]
    assert got["name"].dtype.kind == "S"  # bytes, as Table.read; items are str
    assert got["name"][0] == "a"


def test_ascii_table_keeps_an_unrecognised_unit(tmp_path: Path) -> None:
    column = fits.Column(name="x", format="E15.7", unit="pixels", array=np.array([1.0, 2.0]))
    path = tmp_path / "ascii.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU(), fits.TableHDU.from_columns([column])))
    assert_as_astropy(path)
    assert cloudfits.open(path)[1].read()["x"].unit.to_string() == "pixels"


def test_ascii_table_that_defeats_table_read_keeps_units(tmp_path: Path) -> None:
    columns = [
        fits.Column(name="n", format="I10", unit="pixels", null="-999", array=np.array([1, 2])),
        fits.Column(name="s", format="A5", unit="m", array=np.array(["a", "b"])),
    ]
    path = tmp_path / "ascii-null.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU(), fits.TableHDU.from_columns(columns)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError):
            Table.read(path, hdu=1)  # astropy's own reader fails on a string TNULL
    with pytest.warns(cloudfits.CloudFitsWarning, match="TNULL1"):
        got = cloudfits.open(path)[1].read()
    assert got["n"].unit.to_string() == "pixels"
    assert str(got["s"].unit) == "m"


def test_cut_inside_the_last_padding_warns_like_astropy(tmp_path: Path) -> None:
    data = _bytes(fits.PrimaryHDU(np.arange(100, dtype="i2")), fits.ImageHDU(np.ones(7)))
    path = tmp_path / "cut.fits"
    path.write_bytes(data[:-1000])
    with pytest.warns(AstropyUserWarning, match="File may have been truncated"):
        len(fits.open(path))
    with pytest.warns(AstropyUserWarning, match=f"{path}: File may have been truncated"):
        index = cloudfits.build_index(path)
    assert len(index.open("cut.fits")) == 2
    assert_as_astropy(path)


@pytest.mark.parametrize(
    ("tail", "category", "match"),
    [
        (b"\0" * 2880, AstropyUserWarning, "Unexpected extra padding"),
        (b"\0" * 10, AstropyUserWarning, "Unexpected extra padding"),
        (b"junk" * 10, VerifyWarning, "Header size is not multiple of 2880"),
    ],
)
def test_bytes_after_the_last_hdu(
    tmp_path: Path, tail: bytes, category: type[Warning], match: str
) -> None:
    path = tmp_path / "tail.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU(), _table()) + tail)
    with pytest.warns(category, match=match):
        assert len(cloudfits.open(path)) == 2
    assert_as_astropy(path)


def test_concatenated_files_are_read_as_astropy_reads_them(tmp_path: Path) -> None:
    one = _bytes(fits.PrimaryHDU(np.arange(6.0)), _table())
    path = tmp_path / "two-files.fits"
    path.write_bytes(one + one)
    remote = assert_as_astropy(path)
    assert [h.kind for h in remote] == [HDUKind.PRIMARY, HDUKind.BINTABLE] * 2


def test_blank_blocks_after_the_last_hdu_are_refused_as_astropy_does(tmp_path: Path) -> None:
    path = tmp_path / "blanks.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU()) + b" " * 2880)
    with pytest.raises(OSError, match="END"):
        len(fits.open(path))
    with pytest.raises(cloudfits.FitsFormatError, match=f"{path}: HDU 1 at byte 2880"):
        cloudfits.open(path)


def test_nulls_padding_a_header(tmp_path: Path) -> None:
    data = bytearray(_bytes(fits.PrimaryHDU(np.arange(4.0))))
    at = data.index(b"END" + b" " * 77) + 80
    data[at:2880] = b"\0" * (2880 - at)
    path = tmp_path / "nulls.fits"
    path.write_bytes(bytes(data))
    with pytest.warns(AstropyUserWarning, match="null bytes instead of spaces"):
        cloudfits.open(path)
    assert_as_astropy(path)


def test_a_simple_card_out_of_format(tmp_path: Path) -> None:
    data = bytearray(_bytes(fits.PrimaryHDU(np.arange(4.0))))
    data[:80] = b"SIMPLE  = T".ljust(80)
    path = tmp_path / "simple.fits"
    path.write_bytes(bytes(data))
    with pytest.warns(VerifyWarning, match="SIMPLE card but its format"):
        cloudfits.open(path)
    assert_as_astropy(path)


def test_not_fits_is_refused_naming_the_object(tmp_path: Path) -> None:
    path = tmp_path / "page.fits"
    path.write_bytes(b"<!DOCTYPE html>" + b" " * 3000)
    with pytest.raises(OSError, match="No SIMPLE card"):
        fits.open(path)
    with pytest.raises(cloudfits.FitsFormatError, match=f"{path}: HDU 0 at byte 0: no SIMPLE"):
        cloudfits.open(path)


@pytest.mark.parametrize("xtension", ["FOO", "image"])
def test_unknown_extension_reads_as_raw_bytes(tmp_path: Path, xtension: str) -> None:
    header = fits.Header([("XTENSION", xtension), ("BITPIX", 16), ("NAXIS", 1), ("NAXIS1", 5)])
    header["PCOUNT"], header["GCOUNT"] = 0, 1
    body = np.arange(5, dtype=">i2").tobytes()
    extension = header.tostring().encode() + body + b"\0" * (2880 - len(body))
    path = tmp_path / "foo.fits"
    path.write_bytes(_bytes(fits.PrimaryHDU()) + extension)
    remote = assert_as_astropy(path)
    assert remote[1].kind is HDUKind.NONSTANDARD
    assert remote[1].read().tobytes() == body


def test_random_groups_header_as_astropy_presents_it() -> None:
    path = CORPUS_DIR / "invalid" / "group_invalid.fits"
    remote = assert_as_astropy(path)
    assert remote[0].header["NAXIS1"] == 0  # added by astropy's GroupsHDU
    assert "NAXIS1" not in remote[0].raw_header


def test_the_cli_keeps_collecting_past_a_file_astropy_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "page.fits").write_bytes(b"<!DOCTYPE html>" + b" " * 3000)
    (data / "a.fits").write_bytes(_bytes(fits.PrimaryHDU(), _table()))
    (data / "b.fits").write_bytes(_bytes(fits.PrimaryHDU(np.arange(4.0))))
    index_path = tmp_path / "index.json"
    with pytest.raises(cloudfits.FitsFormatError, match=r"page\.fits"):
        cloudfits.build_index(data)  # errors="raise": the error names the object
    assert main(["index", str(data), "--index-uri", str(index_path)]) == 1
    assert "page.fits" in capsys.readouterr().err
    assert cloudfits.load_index(str(index_path)).paths == ["a.fits", "b.fits"]
