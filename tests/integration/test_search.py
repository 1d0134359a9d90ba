"""Header search: the vectorised values against astropy, expressions against a
row-by-row evaluation of the same rules, no data request, the command line."""

from __future__ import annotations

import ast
import json
import operator
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.card import Undefined
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.scale_index import make_index
from cloudfits import FitsIndex, build_index, load_index, stats
from cloudfits.fits.keywords import keyword_values, typed_values
from cloudfits.index.parquet import index_to_parquet
from cloudfits.index.search import SearchExpressionError, parse_expression
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

from ..conftest import CORPUS_DIR

CORPUS_QUERIES = [
    "NAXIS == 2",
    "BITPIX < 0 and NAXIS >= 1",
    "XTENSION in ('BINTABLE', 'IMAGE') and not NAXIS2 > 10",
    "SIMPLE == True or EXTEND == False",
    "`DATE-OBS` >= '2000'",
    "EXTNAME != 'SCI' or NAXIS1 > 10",
    "NAXIS1 == NAXIS2",
    "10 <= NAXIS1 < 100",
    "OBJECT not in ('', 'M31')",
    "EXPTIME > 0 or not EXPTIME > 0",
    "TFIELDS >= 2.5",
    "naxis == 0",
    "BSCALE == 1.0 and BZERO == 32768",
]
GENERATED_QUERIES = [
    "OBJECT == 'M31'",
    "EXPTIME > 100",
    "EXPTIME > 100 and FILTER in ('g', 'r')",
    "not (OBJECT == 'M31' or QUALITY != 0)",
    "`DATE-OBS` < '2019-03' and CAMERA == 2",
    "CRVAL2 < -45.5 and XTENSION == 'IMAGE'",
]


@pytest.fixture(scope="module")
def corpus_index() -> FitsIndex:
    return build_index(CORPUS_DIR)


@pytest.fixture(scope="module")
def generated() -> FitsIndex:
    return make_index(400)


# -- the reference: astropy's Header, one HDU at a time ----------------------------------

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "str" if isinstance(value, str) else None


def _reference(tree: ast.expr, names: dict[str, str], header: fits.Header) -> bool | None:
    """The documented semantics, evaluated with Python values (None: unknown)."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            key = names.get(node.id, node.id.upper())
            return header.get(key, None)
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(value(e) for e in node.elts)
        return ast.literal_eval(node)

    def compare(op: ast.cmpop, a: Any, b: Any) -> bool | None:
        if isinstance(op, (ast.In, ast.NotIn)):
            found = [compare(ast.Eq(), a, c) for c in b]
            result = True if True in found else (None if None in found else False)
            return result if isinstance(op, ast.In) or result is None else not result
        if _kind(a) is None or _kind(a) != _kind(b):
            return None
        return bool(_COMPARE[type(op)](a, b))

    def evaluate(node: ast.expr) -> bool | None:
        if isinstance(node, ast.BoolOp):
            parts = [evaluate(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return False if False in parts else (None if None in parts else True)
            return True if True in parts else (None if None in parts else False)
        if isinstance(node, ast.UnaryOp):
            inner = evaluate(node.operand)
            return None if inner is None else not inner
        assert isinstance(node, ast.Compare)
        result: bool | None = True
        left = value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=False):
            right = value(right_node)
            part = compare(op, left, right)
            result = (
                False if False in (result, part) else (None if None in (result, part) else True)
            )
            left = right
        return result

    return evaluate(tree)


def _brute_force(index: FitsIndex, expression: str) -> list[tuple[str, int]]:
    parsed = parse_expression(expression)
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in index.files:
            for number, hdu in enumerate(entry.hdus):
                header = fits.Header.fromstring(hdu.header)
                if _reference(parsed.tree, parsed.names, header) is True:
                    found.append((entry.path, number))
    return found


def _rows(table: Any) -> list[tuple[str, int]]:
    return [(str(p), int(h)) for p, h in zip(table["path"], table["hdu"], strict=False)]


@pytest.mark.parametrize("expression", CORPUS_QUERIES)
def test_search_of_the_corpus_equals_astropy(corpus_index: FitsIndex, expression: str) -> None:
    expected = _brute_force(corpus_index, expression)
    v2 = FitsIndex.from_bytes(corpus_index.to_parquet())
    for index in (corpus_index, v2):
        table = index.search(expression)
        assert _rows(table) == expected, expression
    # The value columns hold what astropy reads.
    for keyword in parse_expression(expression).keywords:
        for (path, number), value in zip(expected, table[keyword], strict=False):
            header = fits.Header.fromstring(corpus_index.entry(path).hdus[number].header)
            if keyword in header and not isinstance(header[keyword], Undefined):
                assert value == header[keyword] or str(value) == str(header[keyword])


@pytest.mark.parametrize("expression", GENERATED_QUERIES)
def test_search_of_a_generated_index_equals_astropy(generated: FitsIndex, expression: str) -> None:
    expected = _brute_force(generated, expression)
    assert expected or "not" in expression  # the queries do select something
    v2 = FitsIndex.from_bytes(generated.to_parquet())
    assert _rows(generated.search(expression)) == expected
    assert _rows(v2.search(expression)) == expected


def test_result_columns_are_typed(generated: FitsIndex) -> None:
    table = generated.search("EXPTIME > 100 and OBJECT == 'M31' and SIMPLE == True")
    assert table.colnames == ["path", "hdu", "EXPTIME", "OBJECT", "SIMPLE"]
    assert table["EXPTIME"].dtype.kind == "f"
    assert table["OBJECT"].dtype.kind == "U"
    assert table["SIMPLE"].dtype.kind == "b"
    assert table["hdu"].dtype.kind == "i"
    mixed = generated.search("NAXIS >= 0")
    assert mixed["NAXIS"].dtype.kind == "i"
    missing = generated.search("NAXIS >= 0 or OBJECT == 'M31'")
    assert missing["OBJECT"].mask.any()
    assert not missing["OBJECT"].mask.all()


@pytest.mark.parametrize(
    "expression",
    [
        "NAXIS",
        "len(OBJECT) > 2",
        "OBJECT.upper() == 'M31'",
        "NAXIS1 + 1 > 3",
        "OBJECT[0] == 'M'",
        "OBJECT in 'M31'",
        "OBJECT in (NAXIS,)",
        "lambda: 1",
        "OBJECT == None",
        "NAXIS is 2",
        "__import__('os')",
        "NAXIS == 2 if True else 1",
        "NAXIS ==",
        "`` == 1",
    ],
)
def test_disallowed_expressions(expression: str) -> None:
    with pytest.raises(SearchExpressionError):
        parse_expression(expression)


def test_search_makes_no_request_on_a_v1_index(corpus_index: FitsIndex) -> None:
    before = stats.snapshot()
    corpus_index.search("NAXIS == 2 and BITPIX == 16")
    assert stats.snapshot() == before


@pytest.mark.s3
def test_search_on_s3_reads_only_the_index(generated: FitsIndex, s3_server: S3Server) -> None:
    s3_server.create_bucket("search-v2")
    uri = "s3://search-v2/gen.parquet"
    generated.save(uri)
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        index = load_index(uri, endpoint_url=proxy.url)
        table = index.search("OBJECT == 'M31' and EXPTIME > 100")
        later = index.search("`ORIGIN` == 'NASA/Ames' or NAXIS1 > 2000")
        records = proxy.records
    assert len(table)
    assert len(later) == 3 * len(generated)
    assert {r.target.split("?")[0] for r in records} == {"/search-v2/gen.parquet"}
    # Keywords without a column of their own are read from the headers.
    s3_server.client().put_object(
        Bucket="search-v2",
        Key="few.parquet",
        Body=index_to_parquet(generated, max_keyword_columns=1),
    )
    few = load_index("s3://search-v2/few.parquet")
    assert not {"OBJECT", "EXPTIME"} & set(few.source.keyword_columns)  # type: ignore[attr-defined]
    assert _rows(few.search("OBJECT == 'M31' and EXPTIME > 100")) == _rows(table)


# -- the vectorised values against astropy's Card ----------------------------------------

_KEY = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=8).filter(
    lambda k: k not in ("END", "COMMENT", "HISTORY", "CONTINUE", "HIERARCH")
)
_STRING = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@st.composite
def _value_text(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["str", "int", "float", "bool", "complex", "undef", "junk"]))
    if kind == "str":
        body = draw(_STRING).replace("'", "''")
        return "'" + body + " " * draw(st.integers(0, 4)) + "'"
    if kind == "int":
        return draw(st.sampled_from(["", "+", "-"])) + str(draw(st.integers(0, 10**15)))
    if kind == "float":
        mantissa = draw(st.sampled_from(["1.5", ".25", "3.", "12", "0.000123", "7.0"]))
        exponent = draw(st.sampled_from(["", "E5", "e-3", "D+2", "d7", "E 3", " D-1"]))
        return draw(st.sampled_from(["", "-", "+", "- "])) + mantissa + exponent
    if kind == "bool":
        return draw(st.sampled_from(["T", "F"]))
    if kind == "complex":
        return f"({draw(st.integers(-99, 99))}.5, {draw(st.integers(-99, 99))})"
    if kind == "undef":
        return ""
    return draw(st.sampled_from(["abc", "1.2.3", "'unclosed", "TT", "(1, 2", "1 2"]))


@st.composite
def _cards(draw: st.DrawFn) -> str:
    key = draw(_KEY)
    value = draw(_value_text())
    pad = " " * draw(st.integers(0, 20 if value else 0))
    comment = draw(st.one_of(st.just(""), _STRING.map(lambda c: " / " + c.replace("'", ""))))
    if draw(st.booleans()):
        value = value.rjust(20)
    return f"{key:<8}= {pad}{value}{comment}"[:80].ljust(80)


def _compare_with_astropy(text: str) -> None:
    values = keyword_values([text])
    typed = typed_values(values.tokens)
    mine = {}
    for i, key in enumerate(values.keywords.to_pylist()):
        for field in ("strings", "booleans", "integers", "floats", "others"):
            got = getattr(typed, field)[i].as_py()
            if got is not None:
                mine[key] = got
                break
        else:
            mine[key] = "undefined" if values.tokens[i].as_py() == "" else "unparsable"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromstring(text)
        for key in {c.keyword for c in header.cards} - {"COMMENT", "HISTORY", ""}:
            try:
                expected: Any = header[key]
            except Exception:  # astropy: VerifyError for an unparsable value
                expected = "unparsable"
            if expected is None or isinstance(expected, Undefined):
                expected = "undefined"  # Header gives None for an undefined value
            got = mine.get(key.upper(), "missing")
            if isinstance(expected, complex):
                expected = str(expected)
                assert isinstance(got, str)
                real, imag = (float(p) for p in got.strip("()").split(","))
                got = str(complex(real, imag))
            assert got == expected, (key, text)
            assert type(got) is type(expected), (key, text)


@settings(max_examples=400, deadline=None)
@given(cards=st.lists(_cards(), min_size=1, max_size=6))
def test_values_equal_astropy_cards(cards: list[str]) -> None:
    _compare_with_astropy("".join(cards) + "END".ljust(80))


@pytest.mark.parametrize(
    "cards",
    [
        ["HIERARCH ESO DET CHIP = 3 / chip", "HIERARCH ESO OBS NAME = 'deep field'"],
        [
            "LONGSTR = 'first part of a long string value that goes on and on and on &'",
            "CONTINUE  'and continues here&'",
            "CONTINUE  'to the end' / comment",
            "NAXIS = 2",
        ],
        ["DP1     = 'NAXES: 2'", "DP1     = 'AXIS.1: 1'", "OTHER   = 5"],
        ["lower   = 'lower-case keyword'", "A= 5", "NOINDIC 7", "DUP     = 1", "DUP     = 2"],
        ["OBJECT  = 'O''Brien  '  / quote inside", "EMPTY   = ''", "BLANKS  = '    '"],
    ],
)
def test_rare_conventions_equal_astropy(cards: list[str]) -> None:
    _compare_with_astropy("".join(c[:80].ljust(80) for c in cards) + "END".ljust(80))


def test_values_of_the_corpus_equal_astropy(corpus_index: FitsIndex) -> None:
    headers = [h.header for f in corpus_index.files for h in f.hdus]
    values = keyword_values(headers)
    typed = typed_values(values.tokens)
    rows = values.rows.tolist()
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = [fits.Header.fromstring(h) for h in headers]
        for i, (row, key) in enumerate(zip(rows, values.keywords.to_pylist(), strict=False)):
            try:
                expected = parsed[row][key]
            except Exception:
                assert values.tokens[i].as_py() is None
                continue
            got = next(
                (
                    getattr(typed, f)[i].as_py()
                    for f in ("strings", "booleans", "integers", "floats")
                    if getattr(typed, f)[i].as_py() is not None
                ),
                None,
            )
            if isinstance(expected, (str, bool, int, float)):
                assert got == expected, (row, key)
                assert type(got) is type(expected), (row, key)
                checked += 1
    assert checked > 2500


# -- the command line ----------------------------------------------------------------------


def test_cli_search(generated: FitsIndex, tmp_path: Path) -> None:
    uri = str(tmp_path / "gen.parquet")
    generated.save(uri)
    run = [sys.executable, "-m", "cloudfits", "search", uri]
    done = subprocess.run([*run, "OBJECT == 'M31'", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    expected = _brute_force(generated, "OBJECT == 'M31'")
    assert [(r["path"], r["hdu"]) for r in rows] == expected
    assert {r["OBJECT"] for r in rows} == {"M31"}
    text = subprocess.run([*run, "EXPTIME > 1000"], capture_output=True, text=True)
    assert text.returncode == 0
    assert "EXPTIME" in text.stdout.splitlines()[0]
    assert len(text.stdout.splitlines()) == 2 + len(_brute_force(generated, "EXPTIME > 1000"))
    bad = subprocess.run([*run, "NAXIS + 1"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "not allowed in a search" in bad.stderr
    assert np.all([r["hdu"] in (0, 1) for r in rows])
