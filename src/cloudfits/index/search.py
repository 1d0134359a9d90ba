"""Header search across an index: which HDUs have ``OBJECT == 'M31'``, ``EXPTIME > 100``.

An expression is parsed with Python's `ast` module and only these forms are allowed:
comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, chained ones too), ``in`` and
``not in`` a tuple or list of constants, ``and``, ``or``, ``not``, parentheses, constants
(strings, integers, floats, ``True``, ``False``) and keyword names. Names are keywords,
case-insensitive. Keywords with hyphens are written as they are
(``DATE-OBS >= '2020-01-01'``: an expression has no arithmetic, so a hyphen between
letters or digits can only be part of a keyword); any other keyword that is not a
Python name goes in backquotes (```ESO DET CHIP` == 3`` for HIERARCH cards).

Values are what `astropy.io.fits.Header` returns. A comparison holds only between values
of the same kind: a string with a string, a logical (``T``/``F``) with ``True`` or
``False``, a number with a number (integers exactly, otherwise as floats). A keyword
missing from an HDU, undefined, complex, or of another kind makes the comparison
*unknown*, and logic is three-valued as in SQL: ``not`` unknown is unknown, an HDU
matches only when the whole expression is true. So ``EXPTIME > 100`` and
``not EXPTIME > 100`` together match exactly the HDUs with a numeric ``EXPTIME``.

Searching needs no data request: a version 2 index reads its keyword columns (or its
headers, for a keyword without a column); a version 1 index has its headers in memory.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..fits.keywords import TypedValues, as_bools, typed_values

if TYPE_CHECKING:
    import pyarrow as pa
    from astropy.table import Table

    from .core import FitsIndex

__all__ = ["SearchExpressionError", "parse_expression", "search_index"]


class SearchExpressionError(ValueError):
    """A search expression that is not one of the allowed forms."""


@dataclass(frozen=True)
class Keyword:
    """A keyword in an expression."""

    name: str


Constant = str | int | float | bool
Operand = Keyword | Constant | tuple[Constant, ...]
_OPS: dict[type, str] = {
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
}
_FLIPPED = {
    "equal": "equal",
    "not_equal": "not_equal",
    "less": "greater",
    "less_equal": "greater_equal",
    "greater": "less",
    "greater_equal": "less_equal",
}
_BACKQUOTED = re.compile(r"`([^`]*)`")
# Quoted strings and backquoted keywords, which the hyphen rule leaves alone.
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)""")
_HYPHENATED = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+)(?![\w.])")


def _backquote_hyphenated(text: str) -> str:
    """``DATE-OBS >= 'x'`` -> ```DATE-OBS` >= 'x'`` outside strings and backquotes."""
    parts = _QUOTED.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = _HYPHENATED.sub(r"`\1`", parts[i])
    return "".join(parts)


@dataclass(frozen=True)
class Expression:
    """A parsed search expression: its tree and the keywords it uses."""

    tree: ast.expr
    names: dict[str, str]  # placeholder identifier -> keyword
    keywords: tuple[str, ...]


def parse_expression(text: str) -> Expression:
    """Parse and check a search expression (see the module description).

    Raises
    ------
    SearchExpressionError
        Naming what is not allowed.
    """
    names: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        keyword = match.group(1).strip().upper()
        if not keyword or not keyword.isascii() or not keyword.isprintable():
            raise SearchExpressionError(f"bad keyword in backquotes: {match.group(0)!r}")
        name = f"_kw{len(names)}_"
        names[name] = keyword
        return name

    try:
        quoted = _backquote_hyphenated(text)
        tree = ast.parse(_BACKQUOTED.sub(placeholder, quoted).strip(), mode="eval").body
    except SyntaxError as err:
        raise SearchExpressionError(f"not a search expression: {text!r} ({err.msg})") from None
    used: list[str] = []
    _check(tree, names, used)
    return Expression(tree, names, tuple(dict.fromkeys(used)))


def _constant(node: ast.expr) -> Constant | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _constant(node.operand)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 63:
            return float(value)  # beyond any FITS integer: compared as a number
        return value
    return None


def _check(node: ast.expr, names: dict[str, str], used: list[str]) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, names, used)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, names, used)
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for op, right in zip(node.ops, node.comparators, strict=False):
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (ast.Tuple, ast.List, ast.Set)) or any(
                    _constant(e) is None for e in right.elts
                ):
                    raise SearchExpressionError(
                        f"'in' needs a tuple of constants, not {ast.unparse(right)!r}"
                    )
            elif type(op) not in _OPS:
                raise SearchExpressionError(f"operator {type(op).__name__} is not allowed")
        for operand in operands:
            if isinstance(operand, ast.Name):
                used.append(names.get(operand.id, operand.id.upper()))
            elif isinstance(operand, (ast.Tuple, ast.List, ast.Set)):
                continue
            elif _constant(operand) is None:
                raise SearchExpressionError(
                    f"{ast.unparse(operand)!r} is neither a keyword nor a constant"
                )
    elif isinstance(node, ast.Name) or _constant(node) is not None:
        raise SearchExpressionError(
            f"{ast.unparse(node)!r} alone is not a condition: compare it (== True, > 0, ...)"
        )
    else:
        raise SearchExpressionError(f"{ast.unparse(node)!r} is not allowed in a search")


class _Evaluator:
    def __init__(self, expression: Expression, values: dict[str, TypedValues], n: int):
        self.expression = expression
        self.values = values
        self.n = n

    def operand(self, node: ast.expr) -> Operand:
        if isinstance(node, ast.Name):
            return Keyword(self.expression.names.get(node.id, node.id.upper()))
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return tuple(_constant(e) for e in node.elts)  # type: ignore[misc]
        value = _constant(node)
        assert value is not None
        return value

    def compare(self, op: str, left: Operand, right: Operand) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not isinstance(left, Keyword) and isinstance(right, Keyword):
            return self.compare(_FLIPPED[op], right, left)
        function: Callable[..., pa.Array] = getattr(pc, op)
        if not isinstance(left, Keyword):  # two constants
            same_kind = _kind(left) == _kind(right)
            result = bool(function(left, right).as_py()) if same_kind else None
            return pa.array(np.full(self.n, result), pa.bool_())
        a = self.values[left.name]
        if isinstance(right, Keyword):
            b = self.values[right.name]
            return pc.coalesce(
                function(a.strings, b.strings),
                function(a.booleans, b.booleans),
                function(a.integers, b.integers),
                function(a.floats, b.floats),
            )
        if isinstance(right, bool):
            return function(a.booleans, right)
        if isinstance(right, str):
            return function(a.strings, right)
        if isinstance(right, int):
            exact = function(a.integers, right)
            return pc.coalesce(exact, function(a.floats, float(right)))
        assert isinstance(right, float)
        return function(a.floats, right)

    def evaluate(self, node: ast.expr) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(node, ast.BoolOp):
            combine = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
            result = self.evaluate(node.values[0])
            for value in node.values[1:]:
                result = combine(result, self.evaluate(value))
            return result
        if isinstance(node, ast.UnaryOp):
            return pc.invert(self.evaluate(node.operand))
        assert isinstance(node, ast.Compare)
        result = None
        left = self.operand(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=False):
            right = self.operand(comparator)
            if isinstance(op, (ast.In, ast.NotIn)):
                assert isinstance(right, tuple)
                found = pa.array(np.zeros(self.n, dtype=bool))
                for constant in right:
                    found = pc.or_kleene(found, self.compare("equal", left, constant))
                part = pc.invert(found) if isinstance(op, ast.NotIn) else found
            else:
                part = self.compare(_OPS[type(op)], left, right)
            result = part if result is None else pc.and_kleene(result, part)
            left = right
        assert result is not None
        return result


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _column(values: TypedValues, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Typed values of ``rows`` and the mask of missing ones."""
    import pyarrow as pa

    taken = pa.array(rows, pa.int64())
    parts = {
        "str": values.strings.take(taken),
        "bool": values.booleans.take(taken),
        "int": values.integers.take(taken),
        "float": values.floats.take(taken),
        "other": values.others.take(taken),
    }
    present = {kind: as_bools(a.is_valid()) for kind, a in parts.items()}
    any_value = present["str"] | present["bool"] | present["float"] | present["other"]
    kinds = [k for k in ("str", "bool", "float", "other") if present[k].any()]
    if kinds == ["float"] and (present["int"] == present["float"]).all():
        kinds = ["int"]
    if len(kinds) == 1:
        array = parts[kinds[0]]
        fill = {"str": "", "bool": False, "int": 0, "float": np.nan, "other": ""}[kinds[0]]
        filled = array.fill_null(fill)
        if kinds[0] == "bool":
            return as_bools(filled), ~any_value
        if kinds[0] in ("int", "float"):
            return filled.to_numpy(), ~any_value
        return np.asarray(filled.to_pylist(), dtype=str), ~any_value
    text = [
        next(
            (
                str(parts[k][i].as_py())
                for k in ("str", "bool", "int", "float", "other")
                if present[k][i]
            ),
            "",
        )
        for i in range(len(rows))
    ]
    return np.asarray(text, dtype=str), ~any_value


def search_index(index: FitsIndex, expression: str) -> Table:
    """The HDUs of ``index`` whose headers satisfy ``expression``.

    See `FitsIndex.search` and the module description.
    """
    from astropy.table import MaskedColumn, Table

    parsed = parse_expression(expression)
    paths, file_of_row, hdu = index.source.hdu_rows()
    n = len(file_of_row)
    tokens = index.source.keyword_tokens(parsed.keywords) if n else {}
    values = {k: typed_values(t) for k, t in tokens.items()}
    if n:
        matched = _Evaluator(parsed, values, n).evaluate(parsed.tree)
        rows = np.flatnonzero(as_bools(matched))
    else:
        rows = np.zeros(0, dtype=np.int64)
    table = Table()
    table["path"] = np.asarray([paths[i] for i in file_of_row[rows].tolist()], dtype=str)
    table["hdu"] = np.asarray(hdu[rows], dtype=np.int64)
    for keyword in parsed.keywords:
        if n:
            data, mask = _column(values[keyword], rows)
        else:
            data, mask = np.zeros(0, dtype=str), np.zeros(0, dtype=bool)
        table[keyword] = MaskedColumn(data, mask=mask) if mask.any() else data
    return table
