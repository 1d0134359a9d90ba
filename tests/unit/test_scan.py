"""Tests of the header scanner (`cloudfits.fits.scan.scan_fits`).

The oracle is astropy reading the same local bytes: HDU offsets and sizes from
``fits.open`` and the header cards from astropy's own header parser.
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning, AstropyWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudfits import FitsFormatError
from cloudfits.fits.scan import BLOCK, DEFAULT_SPECULATIVE_READ, HDULayout, padded, scan_fits

from ..conftest import CORPUS, CORPUS_DIR

END_CARD = "END" + " " * 77
SMALL_FILE_LIMIT = 46_000  # "below 46 KB": less than one speculative read (16 blocks)
# astropy's GroupsHDU rewrites this header on read (NAXIS 0 -> 1, adds NAXIS1), so its
# HDU header is not the file's; the header parsed straight from the bytes still is.
ASTROPY_REWRITES_HEADER = {"invalid/group_invalid.fits"}


class CountingReader:
    """``read(start, end)`` over bytes in memory, recording every call."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        assert 0 <= start <= end <= len(self.data), (start, end, len(self.data))
        self.calls.append((start, end))
        return self.data[start:end]

    @property
    def nbytes(self) -> int:
        return sum(end - start for start, end in self.calls)

    def calls_touching(self, start: int, end: int) -> list[tuple[int, int]]:
        return [(s, e) for s, e in self.calls if s < end and e > start]


def scan_bytes(data: bytes, name: str = "mem.fits", **kwargs: int) -> list[HDULayout]:
    return scan_fits(CountingReader(data), len(data), name=name, **kwargs)


def to_bytes(hdul: fits.HDUList) -> bytes:
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    return buffer.getvalue()


def card_images(header: fits.Header) -> list[str]:
    return [card.image for card in header.cards]


def astropy_layouts(path: Path) -> list[tuple[int, int, int, int, list[str]]]:
    """(header offset, data offset, padded data size, data size, cards) of each HDU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(path, disable_image_compression=True) as hdul:
            return [
                (
                    hdu._header_offset,
                    hdu._data_offset,
                    hdu._data_size,
                    hdu.size,
                    card_images(hdu.header),
                )
                for hdu in hdul
            ]


def raw_header(path: Path, offset: int) -> fits.Header:
    """The header at ``offset`` parsed by astropy directly from the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with open(path, "rb") as f:
            f.seek(offset)
            return fits.Header.fromfile(f)


def has_offset(message: str, offset: int) -> bool:
    return re.search(rf"(?<!\d){offset}(?!\d)", message) is not None


def assert_names_hdu(err: FitsFormatError, name: str, number: int, offset: int) -> None:
    message = str(err)
    assert name in message, message
    assert f"HDU {number}" in message, message
    assert has_offset(message, offset), message


# -- the oracle: what fits.open makes of the same bytes --------------------------------

# astropy's warnings about the layout (not about single cards), and the phrase that
# says which rule a warning is about: cloudfits gives the same category for each.
LAYOUT_WARNINGS = (
    "Error validating header",  # cloudfits says the reason: "Header size is not multiple"
    "Header size is not multiple",
    "File may have been truncated",
    "Unexpected extra padding",
    "null bytes instead of spaces",
    "SIMPLE card but its format",
    "Unexpected bytes trailing END",
    "Missing padding to end of the FITS block",
)


@dataclass(frozen=True)
class Outcome:
    """What a reader makes of an object: its HDUs, or a refusal, and its layout warnings."""

    hdus: tuple[tuple[int, int, int], ...] | None
    """(header offset, data offset, data size) of each HDU; None: the object is refused."""
    warned: frozenset[type[Warning]]
    error: BaseException | None = None


def _layout_warnings(record: list[warnings.WarningMessage]) -> frozenset[type[Warning]]:
    return frozenset(
        w.category for w in record if any(p in str(w.message) for p in LAYOUT_WARNINGS)
    )


def astropy_outcome(data: bytes) -> Outcome:
    """What ``fits.open`` does with ``data``, with cloudfits' two documented refusals:
    data that a header announces but the object lacks (astropy opens the file and
    fails on reading that data), and a negative data size (astropy then reads the
    next header inside this HDU's data)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            with fits.open(io.BytesIO(data), disable_image_compression=True) as hdul:
                hdul.readall()
                hdus = tuple((h._header_offset, h._data_offset, h.size) for h in hdul)
        except Exception as err:  # astropy refuses with OSError, KeyError, TypeError, ...
            return Outcome(None, _layout_warnings(record), err)
    if any(size < 0 or start + size > len(data) for _, start, size in hdus):
        return Outcome(None, frozenset())
    return Outcome(hdus, _layout_warnings(record))


def cloudfits_outcome(data: bytes, name: str = "mem.fits") -> Outcome:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            layouts = scan_bytes(data, name)
        except FitsFormatError as err:
            return Outcome(None, _layout_warnings(record), err)
    hdus = tuple((x.header_offset, x.data_offset, x.data_size) for x in layouts)
    for w in record:
        if any(p in str(w.message) for p in LAYOUT_WARNINGS):
            assert str(w.message).startswith(f"{name}: "), w.message  # names the object
    return Outcome(hdus, _layout_warnings(record))


def assert_scans_as_astropy(data: bytes, name: str = "mem.fits") -> Outcome:
    """cloudfits finds the HDUs astropy finds, refuses what astropy refuses, and gives
    astropy's category for each layout warning astropy gives."""
    expected = astropy_outcome(data)
    got = cloudfits_outcome(data, name)
    assert got.hdus == expected.hdus, (got, expected)
    if expected.hdus is not None:
        assert got.warned == expected.warned, (got, expected)
    else:
        assert isinstance(got.error, FitsFormatError)
        assert name in str(got.error)
    return got


def test_the_oracle_sees_differences() -> None:
    """The comparison fails where cloudfits and astropy part (and not otherwise)."""
    data = _small_file()
    assert astropy_outcome(data) == cloudfits_outcome(data)
    assert astropy_outcome(data).hdus != cloudfits_outcome(data + data).hdus
    assert astropy_outcome(data + b"x" * 10).warned == frozenset({VerifyWarning})
    assert astropy_outcome(data).warned == frozenset()
    assert astropy_outcome(data[:100]).hdus is None


# -- the astropy corpus ----------------------------------------------------------------


@pytest.mark.parametrize("rel", CORPUS)
def test_corpus_layout_matches_astropy(rel: str) -> None:
    path = CORPUS_DIR / rel
    data = path.read_bytes()
    reader = CountingReader(data)
    layouts = scan_fits(reader, len(data), name=rel)
    expected = astropy_layouts(path)

    assert len(layouts) == len(expected)
    for layout, (header_offset, data_offset, padded_size, size, cards) in zip(
        layouts, expected, strict=True
    ):
        assert layout.header_offset == header_offset
        assert layout.data_offset == data_offset
        assert padded(layout.data_size) == padded_size
        assert layout.data_size == size  # unpadded
        # The header text is the file's bytes, whole cards, up to and including END.
        text = layout.header
        assert len(text) % 80 == 0
        assert text.endswith(END_CARD)
        assert data[header_offset : header_offset + len(text)] == text.encode("ascii")
        assert layout.data_offset == header_offset + padded(len(text))
        parsed = fits.Header.fromstring(text)
        assert card_images(parsed) == card_images(raw_header(path, header_offset))
        if rel not in ASTROPY_REWRITES_HEADER:
            assert card_images(parsed) == cards
    # The HDUs tile the file (a short last block is allowed).
    last = layouts[-1]
    assert last.data_offset + last.data_size <= len(data)


@pytest.mark.parametrize("rel", CORPUS)
def test_corpus_image_data_size_is_unpadded(rel: str) -> None:
    path = CORPUS_DIR / rel
    data = path.read_bytes()
    layouts = scan_fits(CountingReader(data), len(data), name=rel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(path, disable_image_compression=True) as hdul:
            kinds = [type(hdu) for hdu in hdul]
    for layout, kind in zip(layouts, kinds, strict=True):
        if kind not in (fits.PrimaryHDU, fits.ImageHDU):
            continue
        header = fits.Header.fromstring(layout.header)
        naxis = header["NAXIS"]
        expected = (
            abs(header["BITPIX"]) // 8 * math.prod(header[f"NAXIS{i}"] for i in range(1, naxis + 1))
            if naxis
            else 0
        )
        assert layout.data_size == expected


def test_corpus_covers_special_cases() -> None:
    """The corpus test above really sees random groups and zero-size HDUs."""
    for rel in ("random_groups.fits", "group.fits", "zerowidth.fits", "o4sp040b0_raw.fits"):
        assert rel in CORPUS
    sizes = [
        layout.data_size
        for rel in ("zerowidth.fits", "o4sp040b0_raw.fits")
        for layout in scan_bytes((CORPUS_DIR / rel).read_bytes(), rel)
    ]
    assert 0 in sizes


@pytest.mark.parametrize("rel", ["random_groups.fits", "group.fits"])
def test_random_groups_data_size(rel: str) -> None:
    data = (CORPUS_DIR / rel).read_bytes()
    layout = scan_bytes(data, rel)[0]
    header = fits.Header.fromstring(layout.header)
    assert header["GROUPS"] is True
    assert header["NAXIS1"] == 0
    naxes = [header[f"NAXIS{i}"] for i in range(2, header["NAXIS"] + 1)]
    expected = abs(header["BITPIX"]) // 8 * header["GCOUNT"] * (header["PCOUNT"] + math.prod(naxes))
    assert expected > 0
    assert layout.data_size == expected


# -- request economy -------------------------------------------------------------------


def test_small_corpus_files_take_one_read() -> None:
    small = [rel for rel in CORPUS if (CORPUS_DIR / rel).stat().st_size < SMALL_FILE_LIMIT]
    assert len(small) >= 25
    for rel in small:
        data = (CORPUS_DIR / rel).read_bytes()
        reader = CountingReader(data)
        scan_fits(reader, len(data), name=rel)
        assert len(reader.calls) == 1, (rel, reader.calls)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Primary without data, then three 1 MiB image HDUs."""
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU()]
    for i in range(3):
        hdus.append(fits.ImageHDU(np.full((512, 512), i, dtype=">f4"), name=f"IMG{i}"))
    path = tmp_path_factory.mktemp("big") / "big.fits"
    fits.HDUList(hdus).writeto(path)
    return path


def test_large_data_hdus_read_headers_only(big_file: Path) -> None:
    data = big_file.read_bytes()
    reader = CountingReader(data)
    layouts = scan_fits(reader, len(data), name="big.fits")
    assert [(x.header_offset, x.data_offset, padded(x.data_size)) for x in layouts] == [
        e[:3] for e in astropy_layouts(big_file)
    ]
    assert [x.data_size for x in layouts] == [0, 2**20, 2**20, 2**20]
    assert len(reader.calls) <= len(layouts)
    assert reader.nbytes < 64 * 1024 * len(layouts)
    for layout in layouts:
        # Each header arrives whole in a single read.
        end = layout.header_offset + len(layout.header)
        assert any(s <= layout.header_offset and end <= e for s, e in reader.calls)


def _long_header_file(n_history: int) -> bytes:
    """Primary, a 1 MiB image, then an image HDU with ``n_history`` HISTORY cards."""
    long = fits.ImageHDU(np.arange(10, dtype=">i2"), name="LONG")
    for i in range(n_history):
        long.header.add_history(f"history card number {i}")
    hdus = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((512, 512), ">f4")), long])
    return to_bytes(hdus)


def test_long_header_few_reads() -> None:
    data = _long_header_file(1000)
    reader = CountingReader(data)
    layouts = scan_fits(reader, len(data), name="long.fits")
    long = layouts[2]
    assert (long.data_offset - long.header_offset) // BLOCK > 16
    header = fits.Header.fromstring(long.header)
    assert len(header["HISTORY"]) == 1000
    assert header["HISTORY"][999] == "history card number 999"
    assert long.data_size == 20
    with fits.open(io.BytesIO(data)) as expected:
        assert [(x.header_offset, x.data_offset) for x in layouts] == [
            (h._header_offset, h._data_offset) for h in expected
        ]
        assert card_images(header) == card_images(expected[2].header)
    assert len(reader.calls_touching(long.header_offset, long.data_offset)) <= 3


def test_very_long_header_reads_grow_geometrically() -> None:
    data = _long_header_file(5000)
    reader = CountingReader(data)
    long = scan_fits(reader, len(data), name="long.fits")[2]
    blocks = (long.data_offset - long.header_offset) // BLOCK
    assert blocks > 128
    doublings = math.ceil(math.log2(blocks * BLOCK / DEFAULT_SPECULATIVE_READ))
    assert len(reader.calls_touching(long.header_offset, long.data_offset)) <= 1 + doublings


def test_long_header_bytes_are_fetched_once() -> None:
    data = _long_header_file(1000)
    reader = CountingReader(data)
    long = scan_fits(reader, len(data), name="long.fits")[2]
    touching = reader.calls_touching(long.header_offset, long.data_offset)
    fetched = sum(min(e, long.data_offset) - max(s, long.header_offset) for s, e in touching)
    assert fetched == long.data_offset - long.header_offset


# -- truncation ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _varied_hdul_bytes() -> bytes:
    """Five HDUs of every common kind; every HDU has data, none a multiple of 2880."""
    primary = fits.PrimaryHDU(np.arange(7 * 13, dtype=">i2").reshape(7, 13))
    image = fits.ImageHDU(np.linspace(0, 1, 30 * 41).reshape(30, 41), name="FLOAT")
    for i in range(60):
        image.header.add_history(f"two header blocks {i}")
    binary = fits.BinTableHDU.from_columns(
        [
            fits.Column("a", "J", array=np.arange(100)),
            fits.Column("b", "8A", array=[f"r{i}" for i in range(100)]),
        ],
        name="BIN",
    )
    ascii_table = fits.TableHDU.from_columns(
        [fits.Column("x", "E10.4", array=np.arange(33, dtype="f4"))], name="ASC"
    )
    last = fits.ImageHDU(np.arange(1001, dtype=">u1"), name="LAST")
    return to_bytes(fits.HDUList([primary, image, binary, ascii_table, last]))


@pytest.fixture(scope="module")
def varied_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("varied") / "varied.fits"
    path.write_bytes(_varied_hdul_bytes())
    return path


def _varied_layouts() -> list[HDULayout]:
    return scan_bytes(_varied_hdul_bytes(), "varied.fits")


def test_varied_file_matches_astropy(varied_file: Path) -> None:
    layouts = _varied_layouts()
    expected = astropy_layouts(varied_file)
    assert len(layouts) == 5
    mine = [(x.header_offset, x.data_offset, padded(x.data_size), x.data_size) for x in layouts]
    assert mine == [e[:4] for e in expected]
    assert all(x.data_size % BLOCK for x in layouts)
    assert layouts[1].data_offset - layouts[1].header_offset == 2 * BLOCK


def test_truncated_inside_header(varied_file: Path) -> None:
    """astropy reads the HDUs before a cut header and warns: a short header block at
    the end looks the same as extra bytes after the last HDU."""
    layouts = _varied_layouts()
    data = varied_file.read_bytes()
    for number in (1, 2, 4):
        target = layouts[number]
        for cut in (
            target.header_offset + 80,
            target.header_offset + len(target.header) - 40,  # inside the END card
            target.data_offset - 1,  # all cards present, last header block short
        ):
            path = varied_file.with_name(f"cut-{cut}.fits")
            path.write_bytes(data[:cut])
            with pytest.warns(VerifyWarning, match="not multiple of 2880") as record:
                got = scan_fits(CountingReader(path.read_bytes()), cut, name=str(path))
            assert got == layouts[:number]
            message = str(record[0].message)
            assert message.startswith(f"{path}: HDU {number} at byte {target.header_offset}:")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert len(fits.open(path)) == number  # astropy reads the same HDUs


def test_truncated_inside_data(varied_file: Path) -> None:
    layouts = _varied_layouts()
    data = varied_file.read_bytes()
    for number, target in enumerate(layouts):
        for cut in (target.data_offset + 1, target.data_offset + target.data_size - 1):
            path = varied_file.with_name(f"cut-{cut}.fits")
            path.write_bytes(data[:cut])
            with pytest.raises(FitsFormatError, match="truncated") as info:
                scan_fits(CountingReader(path.read_bytes()), cut, name=str(path))
            assert_names_hdu(info.value, str(path), number, target.header_offset)


def test_truncated_inside_first_block_names_hdu() -> None:
    data = _varied_hdul_bytes()[:1000]
    with pytest.raises(FitsFormatError) as info:
        scan_bytes(data, "first.fits")
    assert_names_hdu(info.value, "first.fits", 0, 0)


@st.composite
def _cuts(draw: st.DrawFn) -> int:
    """A cut inside the header (with its padding) or the data of one HDU, or exactly
    after the last data byte."""
    layouts = _varied_layouts()
    target = layouts[draw(st.integers(0, len(layouts) - 1))]
    last = layouts[-1]
    return draw(
        st.one_of(
            st.integers(target.header_offset + 1, target.data_offset + target.data_size - 1),
            st.just(last.data_offset + last.data_size),
        )
    )


@settings(max_examples=150, deadline=None)
@given(cut=_cuts())
def test_truncation_property(cut: int) -> None:
    """Wherever an object is cut, cloudfits does what astropy does, and says where."""
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    got = assert_scans_as_astropy(full[:cut], "prop.fits")
    number = max(i for i, x in enumerate(layouts) if x.header_offset < cut)
    target = layouts[number]
    if got.hdus is None:  # a cut header of HDU 0, or missing data
        error = cast(FitsFormatError, got.error)
        assert_names_hdu(error, "prop.fits", number, target.header_offset)
    elif cut < target.data_offset:  # a cut header after HDU 0: the HDUs before it
        assert got.hdus == tuple(_triples(layouts[:number]))
        assert VerifyWarning in got.warned  # with AstropyUserWarning when END is there
    else:  # only padding is missing
        assert got.hdus == tuple(_triples(layouts))
        assert got.warned == ({AstropyUserWarning} if cut % BLOCK else set())


def _triples(layouts: list[HDULayout]) -> list[tuple[int, int, int]]:
    return [(x.header_offset, x.data_offset, x.data_size) for x in layouts]


def test_cut_in_first_bytes_of_extension_header() -> None:
    """Even ``XTENSION=`` cut short is, for astropy, extra bytes after the last HDU."""
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    for number in range(1, len(layouts)):
        offset = layouts[number].header_offset
        for extra in range(1, len(b"XTENSION=") + 1):
            with pytest.warns(VerifyWarning, match="not multiple of 2880") as record:
                got = scan_bytes(full[: offset + extra], "cut.fits")
            assert got == layouts[:number]
            assert str(record[0].message).startswith(f"cut.fits: HDU {number} at byte {offset}:")
            assert_scans_as_astropy(full[: offset + extra])


@pytest.mark.parametrize("removed", [1, 2, 1000, "all"])
def test_short_last_block_warns_as_astropy(removed: int | str) -> None:
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    last = layouts[-1]
    padding = len(full) - (last.data_offset + last.data_size)
    assert padding > 1000
    cut = len(full) - (padding if removed == "all" else int(removed))
    with pytest.warns(AstropyUserWarning, match=r"mem\.fits: File may have been truncated.*HDU 4"):
        assert scan_bytes(full[:cut]) == layouts
    assert assert_scans_as_astropy(full[:cut]).warned == {AstropyUserWarning}


def test_cut_at_hdu_boundary_gives_the_hdus_before() -> None:
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    for number in range(1, len(layouts)):
        assert scan_bytes(full[: layouts[number].header_offset]) == layouts[:number]


def test_cut_in_padding_of_middle_hdu_gives_the_hdus_up_to_it() -> None:
    """Such a file is indistinguishable from a complete one with a short last block."""
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    for number in range(len(layouts) - 1):
        target = layouts[number]
        cut = target.data_offset + target.data_size + 1
        assert cut < layouts[number + 1].header_offset
        assert scan_bytes(full[:cut]) == layouts[: number + 1]


# -- malformed input -------------------------------------------------------------------


@lru_cache(maxsize=1)
def _small_file() -> bytes:
    primary = fits.PrimaryHDU(np.arange(12, dtype=">i2").reshape(3, 4))
    ext = fits.ImageHDU(np.arange(10, dtype=">f8").reshape(2, 5), name="EXT")
    return to_bytes(fits.HDUList([primary, ext]))


def _card_position(data: bytes, hdu_offset: int, keyword: str) -> int:
    position = hdu_offset
    while data[position : position + 80] != END_CARD.encode():
        if data[position : position + 8].decode("ascii").rstrip() == keyword:
            return position
        position += 80
    raise KeyError(keyword)


def with_card(data: bytes, keyword: str, value: str, hdu_offset: int = 0) -> bytes:
    """``data`` with the value field of ``keyword``'s card replaced."""
    position = _card_position(data, hdu_offset, keyword)
    card = f"{keyword:<8}= {value:>20}".ljust(80).encode("ascii")
    assert len(card) == 80
    return data[:position] + card + data[position + 80 :]


def _scan_error(data: bytes, name: str = "bad.fits", **kwargs: int) -> FitsFormatError:
    with pytest.raises(FitsFormatError) as info:
        scan_bytes(data, name, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("keyword", "value", "words"),
    [
        ("NAXIS", "-1", None),  # astropy reads a primary HDU of no data, then garbage
        ("NAXIS1", "-5", "NAXIS1 = -5"),  # a negative size: refused (see astropy_outcome)
        ("BITPIX", "7", None),  # astropy sizes the data by |BITPIX| // 8
        ("BITPIX", "12", None),
        ("NAXIS", "1000", "NAXIS = 1000"),
        ("NAXIS", "2.5", "float"),
        ("BITPIX", "T", None),
        ("NAXIS2", "'two'", "str"),
    ],
)
def test_bad_size_keywords(keyword: str, value: str, words: str | None) -> None:
    """Each HDU: opened where astropy opens it, sized as astropy sizes it; where
    refused, the error names the HDU, its offset and the card."""
    for number, offset in enumerate((0, _ext_offset())):
        data = with_card(_small_file(), keyword, value, offset)
        got = assert_scans_as_astropy(data, "bad.fits")
        if words is not None:  # refused at this HDU
            assert isinstance(got.error, FitsFormatError)
            assert_names_hdu(got.error, "bad.fits", number, offset)
            assert words in str(got.error)
        elif got.hdus is None:  # a garbage HDU after this one, as for astropy
            assert re.match(r"bad\.fits: HDU \d+ at byte \d+: ", str(got.error)), got.error


@pytest.mark.parametrize("keyword", ["NAXIS", "TFIELDS", "naxis"])
@pytest.mark.parametrize("value", ["1000000000000", "+2147483648", "1000"])
def test_huge_axis_or_column_count_is_refused_at_once(keyword: str, value: str) -> None:
    """astropy builds a list of NAXIS (or TFIELDS) entries before it checks anything,
    so ``fits.open`` of such a header runs until memory is gone; the scan refuses it
    after reading the header, naming the HDU, its offset and the card."""
    for number, offset in enumerate((0, _ext_offset())):
        card = f"{keyword:<8}= {value:>20}".encode().ljust(80)
        err = _scan_error(_insert_card(_small_file(), offset, card))
        assert_names_hdu(err, "bad.fits", number, offset)
        assert f"{keyword.upper()} = {int(value)}" in str(err)


@pytest.mark.parametrize("keyword", ["GCOUNT", "NAXIS2", "BITPIX", "PCOUNT"])
def test_a_size_card_holding_a_string_is_refused_without_allocating(keyword: str) -> None:
    """astropy multiplies the size cards: ``GCOUNT = 'IMAGE'`` with 999 x 999 axes of
    64 bits repeats the string 64 million times before its sum fails."""
    import tracemalloc

    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = 64
    header["NAXIS"] = 2
    header["NAXIS1"] = 999
    header["NAXIS2"] = 999
    header["PCOUNT"] = 0
    header["GCOUNT"] = 1
    data = with_card(header.tostring().encode(), keyword, "'IMAGE   '")
    tracemalloc.start()
    try:
        err = _scan_error(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{keyword} holds a string" in str(err)
    assert_names_hdu(err, "bad.fits", 0, 0)
    assert peak < 8 * 1024 * 1024, peak


def test_an_axis_beyond_naxis_may_hold_a_string_as_for_astropy() -> None:
    data = _insert_card(_small_file(), 0, b"NAXIS3  = 'unused'".ljust(80))
    got = assert_scans_as_astropy(data, "ok.fits")
    assert got.hdus is not None


def _insert_card(data: bytes, offset: int, card: bytes) -> bytes:
    """``data`` with ``card`` added before the END card of the header at ``offset``
    (into the blank padding that follows END, so nothing moves)."""
    at = data.index(END_CARD.encode(), offset)
    assert at % 80 == 0
    assert data[at + 80 : at + 160] == b" " * 80
    return data[:at] + card + END_CARD.encode() + data[at + 160 :]


def _ext_offset() -> int:
    return scan_bytes(_small_file())[1].header_offset


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("NAXIS", "1e"), ("NAXIS", "'abc"), ("BITPIX", "(1, 2"), ("NAXIS1", "--3")],
)
def test_unparsable_size_value(keyword: str, value: str) -> None:
    err = _scan_error(with_card(_small_file(), keyword, value))
    assert_names_hdu(err, "bad.fits", 0, 0)


@pytest.mark.parametrize("number", [0, 1])
def test_non_ascii_byte_in_header(number: int) -> None:
    """astropy reads a Latin-1 byte in a comment (it shows ``?``): the header text
    keeps the byte, so astropy can make of it what it makes of the file."""
    data = bytearray(_small_file())
    offset = scan_bytes(bytes(data))[number].header_offset
    position = _card_position(bytes(data), offset, "BITPIX") + 75
    data[position] = 0xE9
    assert assert_scans_as_astropy(bytes(data), "bad.fits").hdus is not None
    layout = scan_bytes(bytes(data), "bad.fits")[number]
    assert layout.header[position - offset] == "\xe9"
    assert layout.header.encode("latin-1") == bytes(data[offset : offset + len(layout.header)])


@pytest.mark.parametrize("byte", [0x00, 0x09, 0x0A, 0x7F, 0xFF])
def test_control_byte_in_header(byte: int) -> None:
    """In a card's comment, astropy reads any byte; so does the scan."""
    data = bytearray(_small_file())
    data[80 * 2 + 50] = byte
    got = assert_scans_as_astropy(bytes(data), "bad.fits")
    assert got.hdus == tuple(_triples(scan_bytes(_small_file())))
    assert scan_bytes(bytes(data))[0].header.encode("latin-1")[80 * 2 + 50] == byte


@pytest.mark.parametrize("byte", [0x00, 0x0A, 0xFF])
def test_control_byte_in_a_size_card(byte: int) -> None:
    """In the value of NAXIS1, astropy cannot read the card, nor the scan."""
    data = bytearray(_small_file())
    at = _card_position(bytes(data), 0, "NAXIS1") + 29  # the last digit of the value
    data[at] = byte
    got = assert_scans_as_astropy(bytes(data), "bad.fits")
    assert got.hdus is None
    assert_names_hdu(cast(FitsFormatError, got.error), "bad.fits", 0, 0)


@pytest.mark.parametrize(
    "first", [b"SIMPLY  =", b"XTENSION= 'IMAGE   '", b"        ", b"\0\0\0\0", b"simple  ="]
)
def test_first_block_must_start_with_simple(first: bytes) -> None:
    data = _small_file()
    err = _scan_error(first + data[len(first) :])
    assert "SIMPLE" in str(err)
    assert_names_hdu(err, "bad.fits", 0, 0)


def test_extension_only_file_is_rejected() -> None:
    ext = _small_file()[_ext_offset() :]
    assert ext.startswith(b"XTENSION=")
    assert "SIMPLE" in str(_scan_error(ext))


def test_header_longer_than_max_header_bytes() -> None:
    data = _varied_hdul_bytes()
    layouts = _varied_layouts()
    assert layouts[1].data_offset - layouts[1].header_offset == 2 * BLOCK
    err = _scan_error(data, max_header_bytes=BLOCK)
    assert_names_hdu(err, "bad.fits", 1, layouts[1].header_offset)
    assert "longer than" in str(err)
    # A limit the headers fit in is no problem.
    assert scan_bytes(data, max_header_bytes=2 * BLOCK) == layouts


def test_header_limit_stops_reading_a_file_without_end() -> None:
    """A huge object of blank cards is given up after max_header_bytes, not read whole."""
    data = b"SIMPLE  =                    T".ljust(80) + b" " * (200 * BLOCK - 80)
    reader = CountingReader(data)
    with pytest.raises(FitsFormatError, match="longer than"):
        scan_fits(reader, len(data), name="noend.fits", max_header_bytes=20 * BLOCK)
    assert reader.nbytes <= 40 * BLOCK


@pytest.mark.parametrize("size", [0, 1, 80, BLOCK - 1])
def test_shorter_than_one_block(size: int) -> None:
    err = _scan_error(_small_file()[:size], "tiny.fits")
    assert "tiny.fits" in str(err)


def test_short_reads_are_format_errors() -> None:
    """A reader that returns fewer bytes than asked for (an object shorter than said)."""
    data = _small_file()
    with pytest.raises(FitsFormatError, match=r"short\.fits"):
        scan_fits(lambda start, end: data[start:end], len(data) + 10 * BLOCK, name="short.fits")


@pytest.mark.parametrize("nbytes", [100, BLOCK, 3 * BLOCK])
def test_trailing_zero_bytes_warn_as_astropy(nbytes: int) -> None:
    data = _small_file()
    with pytest.warns(AstropyUserWarning, match="zeros.fits: HDU 2 .*Unexpected extra padding"):
        assert scan_bytes(data + b"\0" * nbytes, "zeros.fits") == scan_bytes(data)
    assert assert_scans_as_astropy(data + b"\0" * nbytes).warned == {AstropyUserWarning}


@pytest.mark.parametrize(
    ("junk", "kept"),
    [
        (bytes(range(256)) * 30, True),
        (b"x" * 10, True),
        (b"END".ljust(80) + b"x" * 100, True),
        (b"this is not FITS".ljust(BLOCK, b"!"), False),  # a whole block without END
    ],
)
def test_trailing_junk_as_astropy(junk: bytes, kept: bool) -> None:
    """A short block after the last HDU: a warning, the HDUs kept; whole blocks
    without END: refused, as astropy refuses them."""
    data = _small_file()
    got = assert_scans_as_astropy(data + junk, "junk.fits")
    ext_end = scan_bytes(data)[-1]
    where = f"junk.fits: HDU 2 at byte {ext_end.data_offset + padded(ext_end.data_size)}"
    if kept:
        assert got.hdus == tuple(_triples(scan_bytes(data)))
        assert got.warned == {VerifyWarning}
    else:
        assert str(got.error).startswith(where), got.error


# -- fuzzing ---------------------------------------------------------------------------


def _scan_must_not_crash(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            layouts = scan_bytes(data, "fuzz.fits")
        except FitsFormatError as err:
            message = str(err)
        else:
            message = None
    if message is not None:
        assert "fuzz.fits" in message
        return
    # Whatever scans must describe HDUs inside the object.
    offset = 0
    for layout in layouts:
        assert layout.header_offset == offset
        assert layout.data_offset + layout.data_size <= len(data)
        offset = layout.data_offset + padded(layout.data_size)


_printable = st.characters(min_codepoint=32, max_codepoint=126)


@st.composite
def _card_soup(draw: st.DrawFn) -> bytes:
    """Printable cards, a SIMPLE card first, an END card somewhere, random tail bytes."""
    cards = draw(st.lists(st.text(_printable, min_size=80, max_size=80), max_size=50))
    keywords = st.sampled_from(["BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "GROUPS", "PCOUNT"])
    keyed = [f"{draw(keywords):<8}= {card[10:]}" if draw(st.booleans()) else card for card in cards]
    text = "SIMPLE  =                    T".ljust(80) + "".join(keyed) + END_CARD
    head = text.encode("ascii")
    return head.ljust(padded(len(head)), b" ") + draw(st.binary(max_size=2 * BLOCK))


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.binary(max_size=3 * BLOCK),
        st.binary(min_size=BLOCK, max_size=3 * BLOCK).map(lambda b: b"SIMPLE  =" + b),
        st.binary(min_size=BLOCK, max_size=2 * BLOCK).map(lambda b: _small_file() + b),
    )
)
def test_fuzz_random_bytes(data: bytes) -> None:
    _scan_must_not_crash(data)


_FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)


@_FUZZ_SETTINGS
@given(_card_soup())
def test_fuzz_printable_cards(data: bytes) -> None:
    _scan_must_not_crash(data)


@st.composite
def _mutated_file(draw: st.DrawFn) -> bytes:
    data = bytearray(_small_file())
    layouts = scan_bytes(_small_file())
    header_bytes = [
        i for x in layouts for i in range(x.header_offset, x.header_offset + len(x.header))
    ]
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            position = draw(st.sampled_from(header_bytes))
            data[position] = draw(st.one_of(st.integers(32, 126), st.integers(0, 255)))
        else:  # rewrite the value field of one card
            card = draw(st.sampled_from(header_bytes[::80]))
            value = draw(st.text(_printable, min_size=20, max_size=20)).encode("ascii")
            data[card + 10 : card + 30] = value
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data if cut is None else data[:cut])


@_FUZZ_SETTINGS
@given(_mutated_file())
def test_fuzz_mutated_headers(data: bytes) -> None:
    _scan_must_not_crash(data)


@pytest.mark.parametrize("rel", CORPUS)
def test_the_standard_view_of_a_header_is_astropys(rel: str) -> None:
    """Where the kind and data size of an HDU are told without astropy's HDU, they are
    the ones astropy's HDU gives; and the corpus has such headers, and others."""
    from cloudfits.fits.astropy_view import astropy_hdu, data_nbytes, hdu_kind_of, standard_view

    data = (CORPUS_DIR / rel).read_bytes()
    for layout in scan_fits(CountingReader(data), len(data), name=rel):
        view = standard_view(layout.header)
        if view is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            hdu = astropy_hdu(layout.header, where=rel)
            assert view == (hdu_kind_of(hdu), data_nbytes(hdu, len(data), where=rel)), rel


def test_the_standard_view_leaves_special_headers_to_astropy() -> None:
    seen = {"standard": 0, "astropy": 0}
    for rel in CORPUS:
        data = (CORPUS_DIR / rel).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            for layout in scan_fits(CountingReader(data), len(data), name=rel):
                seen["standard" if standard_view_of(layout.header) else "astropy"] += 1
    assert seen["standard"] > 50  # 66 of the 75 HDUs
    assert seen["astropy"] > 5  # random groups, compressed images, non-standard ones


def standard_view_of(text: str) -> object:
    from cloudfits.fits.astropy_view import standard_view

    return standard_view(text)


def test_each_standard_first_card_gives_a_kind_of_hdu() -> None:
    from cloudfits.fits.cards import STANDARD_FIRST_CARDS, standard_kind
    from cloudfits.fits.geometry import HDUKind

    for first, kind in STANDARD_FIRST_CARDS.items():
        assert standard_kind(first.ljust(80)) == HDUKind(kind).value
    assert standard_kind(b"SIMPLE  =                    F".ljust(80)) is None
    assert standard_kind(b"XTENSION= 'A3DTABLE'".ljust(80)) is None


_PATH_PARTS = st.lists(
    st.sampled_from(["tess", "cubes", "a.fits", "", ".", "..", "x y"]), max_size=4
)


@given(_PATH_PARTS, _PATH_PARTS, st.booleans(), st.booleans())
def test_an_indexed_path_is_relpaths_answer(
    base: list[str], rest: list[str], leading: bool, trailing: bool
) -> None:
    """The quick relative path of a scan gives what ``posixpath.relpath`` gives."""
    from cloudfits.index.scanning import ScanJob
    from cloudfits.providers.base import ObjectInfo

    root = ("/" if leading else "") + "/".join(base) + ("/" if trailing else "")
    path = "/".join([*base, *rest]) if not leading else "/" + "/".join([*base, *rest])
    try:
        expected = posixpath.relpath(path, root)
    except ValueError:  # no path at all: relpath refuses, so must the scan
        with pytest.raises(ValueError, match="no path specified"):
            ScanJob("s3", root).relative(ObjectInfo(path, 1))
        return
    assert ScanJob("s3", root).relative(ObjectInfo(path, 1)) == expected
