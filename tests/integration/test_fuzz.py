"""Hypothesis fuzzing of the two parsers of untrusted input: the header scanner and the
index loader. Only the documented errors may come out, and no input under 1 MiB may
make them allocate more than 64 MiB (measured with tracemalloc).

The example counts are set so that each test runs in well under a minute; the
environment variable ``CLOUDFITS_FUZZ_EXAMPLES`` raises them for a longer run.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import os
import random
import tracemalloc
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudfits import FitsFormatError, IndexFormatError
from cloudfits.fits.scan import BLOCK, scan_fits
from cloudfits.index import FitsIndex

EXAMPLES = int(os.environ.get("CLOUDFITS_FUZZ_EXAMPLES", "5000"))
MEMORY_LIMIT = 64 * 1024 * 1024
INPUT_LIMIT = 1024 * 1024
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Budget:
    """Counts examples and the largest tracemalloc peak of any of them."""

    def __init__(self) -> None:
        self.examples = 0
        self.peak = 0

    def measure(self, func: Any, *args: Any) -> None:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            func(*args)
        finally:
            self.examples += 1
            self.peak = max(self.peak, tracemalloc.get_traced_memory()[1] - before)


@pytest.fixture
def budget() -> Iterator[Budget]:
    tracemalloc.start()
    found = Budget()
    try:
        yield found
    finally:
        tracemalloc.stop()
    print(f"\n{found.examples} examples, tracemalloc peak {found.peak} bytes")
    assert found.peak < MEMORY_LIMIT


# ------------------------------------------------------------------ headers

_INTEGERS = st.one_of(
    st.integers(-5, 5),
    st.integers(-(2**63), 2**63),
    st.sampled_from([0, 1, 2, 999, 1000, 2880, 10**9, 10**12, 2**31, 2**62, -(2**62)]),
)
_VALUES = st.one_of(
    _INTEGERS.map(str),
    st.sampled_from(["T", "F", "'IMAGE   '", "'BINTABLE'", "'TABLE   '", "1.5", "1E300", "''"]),
    st.sampled_from(["-1.0E999", "'unterminated", "(1, 2)", "NaN", "' 3'", "3 / x", "="]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
_KEYS = st.sampled_from(
    [
        "BITPIX",
        "NAXIS",
        "NAXIS1",
        "NAXIS2",
        "NAXIS3",
        "PCOUNT",
        "GCOUNT",
        "EXTEND",
        "GROUPS",
        "TFIELDS",
        "TFORM1",
        "TTYPE1",
        "THEAP",
        "ZIMAGE",
        "BSCALE",
        "BZERO",
        "BLANK",
        "EXTNAME",
        "END",
        "CONTINUE",
        "HISTORY",
        "COMMENT",
        "HIERARCH A B",
    ]
)


def _card(key: str, value: str) -> bytes:
    if key in ("END", "HISTORY", "COMMENT", "CONTINUE"):
        text = key.ljust(8) + value
    else:
        text = key.ljust(8) + "= " + value.rjust(20)
    return text[:80].ljust(80).encode("latin-1", "replace")


@st.composite
def hdu_bytes(draw: Any, first: bool) -> bytes:
    """A header built of plausible and hostile cards, then maybe its data bytes."""
    cards = [_card("SIMPLE" if first else "XTENSION", "T" if first else draw(_VALUES))]
    sane = draw(st.booleans())
    if sane:
        naxis = draw(st.integers(0, 3))
        cards.append(_card("BITPIX", draw(st.sampled_from(["8", "16", "-32", "64", "7"]))))
        cards.append(_card("NAXIS", str(naxis)))
        cards += [_card(f"NAXIS{i + 1}", str(draw(_INTEGERS))) for i in range(naxis)]
    cards += [_card(draw(_KEYS), draw(_VALUES)) for _ in range(draw(st.integers(0, 12)))]
    if draw(st.integers(0, 9)):
        cards.append(b"END".ljust(80))
    header = b"".join(cards)
    if draw(st.integers(0, 19)) == 0:  # a stray byte that is not printable ASCII
        at = draw(st.integers(0, len(header) - 1))
        header = (
            header[:at] + bytes([draw(st.sampled_from([0, 9, 127, 200, 255]))]) + header[at + 1 :]
        )
    header += b" " * (-len(header) % BLOCK)
    data = b"\0" * draw(st.sampled_from([0, 0, 1, 100, BLOCK, 2 * BLOCK]))
    return header + data


@st.composite
def fits_objects(draw: Any) -> bytes:
    parts = [draw(hdu_bytes(True))]
    parts += [draw(hdu_bytes(False)) for _ in range(draw(st.integers(0, 2)))]
    blob = b"".join(parts)
    cut = draw(st.one_of(st.none(), st.integers(0, len(blob))))
    return blob if cut is None else blob[:cut]


def _scan(blob: bytes, claimed: int) -> None:
    def read(start: int, end: int) -> bytes:
        return blob[start:end]

    with warnings.catch_warnings(), contextlib.suppress(FitsFormatError):
        warnings.simplefilter("ignore")
        scan_fits(read, claimed, name="fuzz.fits")


@FUZZ
@given(blob=fits_objects(), lie=st.sampled_from([0, 0, 0, 1, -1, 2880, 10**15]))
def _fuzz_scanner(budget: Budget, blob: bytes, lie: int) -> None:
    assert len(blob) < INPUT_LIMIT
    budget.measure(_scan, blob, max(0, len(blob) + lie))


def test_scanner_raises_only_fits_format_error(budget: Budget) -> None:
    _fuzz_scanner(budget)
    assert budget.examples >= EXAMPLES


# ------------------------------------------------------------------ indexes

_PRIMARY = (
    b"SIMPLE  =                    T".ljust(80)
    + b"BITPIX  =                   16".ljust(80)
    + b"NAXIS   =                    2".ljust(80)
    + b"NAXIS1  =                   10".ljust(80)
    + b"NAXIS2  =                   10".ljust(80)
    + b"END".ljust(80)
).decode()
_TABLE = (
    b"XTENSION= 'BINTABLE'".ljust(80)
    + b"BITPIX  =                    8".ljust(80)
    + b"NAXIS   =                    2".ljust(80)
    + b"NAXIS1  =                    4".ljust(80)
    + b"NAXIS2  =                    3".ljust(80)
    + b"PCOUNT  =                    0".ljust(80)
    + b"GCOUNT  =                    1".ljust(80)
    + b"TFIELDS =                    1".ljust(80)
    + b"TFORM1  = 'J       '".ljust(80)
    + b"TTYPE1  = 'X       '".ljust(80)
    + b"END".ljust(80)
).decode()


def _valid_document() -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "cloudfits-index",
        "version": 1,
        "generator": "cloudfits test",
        "created": "2026-01-01T00:00:00+00:00",
        "data_uri": "s3://bucket/prefix",
        "files": [
            {
                "path": "dir/a.fits",
                "size": 5 * BLOCK,
                "etag": "abc",
                "hdus": [
                    {"header_offset": 0, "data_offset": BLOCK, "data_size": 200},
                    {"header_offset": 2 * BLOCK, "data_offset": 3 * BLOCK, "data_size": 12},
                ],
            }
        ],
    }
    hdus = document["files"][0]["hdus"]
    hdus[0]["header"], hdus[1]["header"] = _PRIMARY, _TABLE
    return document


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    _INTEGERS,
    st.floats(allow_nan=False),
    st.sampled_from(["", "..", "../x.fits", "/abs", "a\\b", "a//b", "ok.fits", "\u00e9", "\0"]),
    st.sampled_from([_PRIMARY, _TABLE, _PRIMARY[:-80], _PRIMARY + "\u00e9", "END"]),
    st.text(max_size=30),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@st.composite
def index_documents(draw: Any) -> bytes:
    """A valid index, edited: values replaced, keys dropped, entries repeated, bytes flipped."""
    document = _valid_document()
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(document))
        where = draw(st.sampled_from(paths))
        if not where:
            continue
        parent = document
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.integers(0, 3))
        if action == 0:
            parent[where[-1]] = draw(_JSON)
        elif action == 1:
            del parent[where[-1]]
        elif action == 2 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[where[-1]]))
        elif isinstance(parent[where[-1]], int) and not isinstance(parent[where[-1]], bool):
            parent[where[-1]] += draw(st.sampled_from([-1, 1, 80, BLOCK, 10**15]))
    data = json.dumps(document).encode()
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    if draw(st.integers(0, 4)) == 0:
        data = gzip.compress(data)
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
    return data


def _load(data: bytes) -> None:
    try:
        index = FitsIndex.from_bytes(data, source="fuzz-index.json")
    except IndexFormatError:
        return
    # What loaded must also be usable without surprises: every header parses or is
    # refused as FITS, every layout is checked against its header.
    for entry in index.files:
        f = index.open(entry.path)
        for hdu in f:
            try:
                hdu.summary()
                hdu._check_layout()
            except (FitsFormatError, IndexFormatError):
                pass


@FUZZ
@given(data=index_documents())
def _fuzz_index(budget: Budget, data: bytes) -> None:
    assert len(data) < INPUT_LIMIT
    budget.measure(_load, data)


def test_index_loader_raises_only_index_format_error(budget: Budget) -> None:
    _fuzz_index(budget)
    assert budget.examples >= EXAMPLES


def _gzip_bomb(prefix: bytes, filler: bytes, repeat: int, suffix: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(prefix)]
    parts += [packer.compress(filler) for _ in range(repeat)]
    parts += [packer.compress(suffix), packer.flush()]
    return b"".join(parts)


def _dense_index(spacing: int, cards: int) -> bytes:
    """A legal index whose one header compresses about ``spacing / 3`` times."""
    rng = random.Random(1)
    # A block longer than deflate's 32 KiB window, repeated: it compresses as if random.
    block = "".join(rng.choice("ABCDEFGH") + " " * rng.randrange(spacing) for _ in range(2000))
    text = (block * (cards // 2000))[: cards * spacing // 2 // 80 * 80 - 80] + "END".ljust(80)
    document = _valid_document()
    document["files"][0]["size"] = 1 << 40
    hdu = {"header_offset": 0, "data_offset": -(-len(text) // BLOCK) * BLOCK, "data_size": 0}
    document["files"][0]["hdus"] = [{**hdu, "header": text}]
    return gzip.compress(json.dumps(document).encode(), compresslevel=6)


def test_hostile_index_documents_are_refused_in_bounded_memory(budget: Budget) -> None:
    """Hand-made worst cases under 1 MiB: bombs, deep nesting, object floods."""
    cases = [
        # 256 MiB of blanks inside a string, 250 KiB compressed.
        _gzip_bomb(b'{"format": "cloudfits-index", "x": "', b" " * (1 << 20), 256, b'"}'),
        # 30 MB of empty objects.
        _gzip_bomb(b'{"files": [', b"{}," * 100_000, 100, b"{}]}"),
        b"[" * 500_000 + b"]" * 500_000,
        b'{"files": [' + b"{}," * 300_000 + b"{}]}",
        b'{"format": "cloudfits-index", "version": 1e999}',
        b"\xff\xfe" + "{}".encode("utf-16-le"),
    ]
    for data in cases:
        assert len(data) < INPUT_LIMIT
        with pytest.raises(IndexFormatError):
            budget.measure(FitsIndex.from_bytes, data)
    # The most expanding legal document under 1 MiB still loads, within the budget.
    dense = _dense_index(90, 400_000)
    assert len(dense) < INPUT_LIMIT
    budget.measure(FitsIndex.from_bytes, dense)
