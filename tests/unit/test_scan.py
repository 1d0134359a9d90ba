"""Tests of the header scanner (`cloudfits.fits.scan.scan_fits`).

The oracle is astropy reading the same local bytes: HDU offsets and sizes from
``fits.open`` and the header cards from astropy's own header parser.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudfits import CloudFitsWarning, FitsFormatError
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


# The first bytes of an extension header: see test_cut_in_first_bytes_of_extension_header.
XTENSION_PREFIX = len(b"XTENSION=") - 1


@st.composite
def _header_or_data_cuts(draw: st.DrawFn) -> int:
    """A cut strictly inside the header (with its padding) or the data bytes of one HDU,
    or exactly after the last data byte."""
    layouts = _varied_layouts()
    number = draw(st.integers(0, len(layouts) - 1))
    target = layouts[number]
    first = target.header_offset + 1 + (XTENSION_PREFIX if number else 0)
    last = layouts[-1]
    return draw(
        st.one_of(
            st.integers(first, target.data_offset + target.data_size - 1),
            st.just(last.data_offset + last.data_size),
        )
    )


@settings(max_examples=150, deadline=None)
@given(cut=_header_or_data_cuts())
def test_truncation_property(cut: int) -> None:
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    last = layouts[-1]
    if cut >= last.data_offset + last.data_size:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert scan_bytes(full[:cut], "prop.fits") == layouts
        return
    with pytest.raises(FitsFormatError) as info:
        scan_bytes(full[:cut], "prop.fits")
    assert "prop.fits" in str(info.value)
    if cut >= BLOCK:
        number = max(i for i, x in enumerate(layouts) if x.header_offset < cut)
        assert_names_hdu(info.value, "prop.fits", number, layouts[number].header_offset)


def test_cut_in_first_bytes_of_extension_header() -> None:
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    for number in range(1, len(layouts)):
        for extra in range(1, XTENSION_PREFIX + 1):
            cut = layouts[number].header_offset + extra
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CloudFitsWarning)
                with pytest.raises(FitsFormatError):
                    scan_bytes(full[:cut], "prop.fits")


@pytest.mark.parametrize("removed", [1, 2, 1000, "all"])
def test_short_last_block_is_fine(removed: int | str) -> None:
    full = _varied_hdul_bytes()
    layouts = _varied_layouts()
    last = layouts[-1]
    padding = len(full) - (last.data_offset + last.data_size)
    assert padding > 1000
    cut = len(full) - (padding if removed == "all" else int(removed))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scan_bytes(full[:cut]) == layouts


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
        ("NAXIS", "-1", "NAXIS"),
        ("NAXIS1", "-5", "NAXIS1"),
        ("BITPIX", "7", "BITPIX"),
        ("BITPIX", "12", "BITPIX"),
        ("NAXIS", "1000", "NAXIS"),
        ("NAXIS", "2.5", "NAXIS"),
        ("BITPIX", "T", "BITPIX"),
        ("NAXIS2", "'two'", "NAXIS2"),
    ],
)
def test_bad_size_keywords(keyword: str, value: str, words: str) -> None:
    for number, offset in enumerate((0, _ext_offset())):
        err = _scan_error(with_card(_small_file(), keyword, value, offset))
        assert_names_hdu(err, "bad.fits", number, offset)
        assert words in str(err)


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
    data = bytearray(_small_file())
    offset = scan_bytes(bytes(data))[number].header_offset
    position = _card_position(bytes(data), offset, "BITPIX") + 75
    data[position] = 0xE9
    err = _scan_error(bytes(data))
    assert_names_hdu(err, "bad.fits", number, offset)
    assert "ASCII" in str(err)
    assert has_offset(str(err), position)


@pytest.mark.parametrize("byte", [0x00, 0x0A, 0x7F, 0xFF])
def test_control_byte_in_header(byte: int) -> None:
    data = bytearray(_small_file())
    data[80 * 2 + 50] = byte
    assert_names_hdu(_scan_error(bytes(data)), "bad.fits", 0, 0)


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


@pytest.mark.parametrize("blocks", [1, 3])
def test_trailing_zero_blocks_are_ignored(blocks: int) -> None:
    data = _small_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scan_bytes(data + b"\0" * (blocks * BLOCK)) == scan_bytes(data)
        assert scan_bytes(data + b"\0" * 100) == scan_bytes(data)


@pytest.mark.parametrize(
    "junk",
    [b"this is not FITS".ljust(BLOCK, b"!"), bytes(range(256)) * 30, b"x" * 10],
)
def test_trailing_junk_warns_and_keeps_the_hdus(junk: bytes) -> None:
    data = _small_file()
    with pytest.warns(CloudFitsWarning, match="junk.fits"):
        layouts = scan_bytes(data + junk, "junk.fits")
    assert layouts == scan_bytes(data)


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
