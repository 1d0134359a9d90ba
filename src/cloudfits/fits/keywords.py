"""Keyword values of many headers at once, as astropy reads them, without a Card per card.

astropy's `~astropy.io.fits.Card` parses one card in some microseconds; an index of
300,000 HDUs holds some 15 million cards. Here the cards of a batch of headers are one
Arrow string array (80-character slices of the joined header text, no copy per card),
and the keyword, value indicator and value token of every card come from Arrow's
vectorised string kernels, with regular expressions that follow astropy's own
(``Card._value_NFSC_RE``). Headers using rarer conventions (``HIERARCH``, ``CONTINUE``
long strings, record-valued keyword cards, misplaced value indicators, cards without
one) are parsed by astropy itself, whole, so that the result is exact.

A *token* is a card's value as written, comment stripped: ``'M31'`` (quotes kept, ``''``
not yet unescaped), ``T``, ``1.5D3``, ``(1, 2)``, or the empty string (an undefined
value). `typed_values` turns tokens into what `astropy.io.fits.Header` returns.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "KeywordValues",
    "TypedValues",
    "as_bools",
    "keyword_values",
    "token_of",
    "typed_values",
]

_CARD = 80
_COMMENTARY = ["", "COMMENT", "HISTORY", "END"]
_ASTROPY_ONLY = ["HIERARCH", "CONTINUE"]
_NUMBER = r"[+-]? *(?:\.\d+|\d+(?:\.\d*)?) *(?:[deDE] *[+-]? *\d+)?"
# A value field (after "= ") as astropy's _value_NFSC_RE reads it: a value, then spaces,
# then an optional comment. The string alternative is lazy, like astropy's.
_TOKEN = rf"^ *(?P<t>'.*?'|[TF]|{_NUMBER}|\( *{_NUMBER} *, *{_NUMBER} *\)|) *(?:/.*)?$"
_FSC_NUMBER = r"[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?"
_RVKC_FIELD = r"[a-zA-Z_]\w*(?:\.\d+)?"
# A string that astropy reads as a record-valued keyword card ('AXIS.1: 2').
_RVKC_TOKEN = rf"^'{_RVKC_FIELD}(?:\.{_RVKC_FIELD})*: +{_FSC_NUMBER}'$"


def as_bools(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls false (without pyarrow's pandas path)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    out: np.ndarray = pc.fill_null(values, False).cast(pa.uint8()).to_numpy().view(bool)
    return out


@dataclass(frozen=True)
class KeywordValues:
    """The first value of every valued keyword of a batch of headers, in long form.

    Attributes
    ----------
    rows : numpy.ndarray
        The header (position in the batch) of each value.
    keywords : pyarrow.Array
        The keyword of each value (upper case; a HIERARCH keyword without the prefix).
    tokens : pyarrow.Array
        The value token of each value; null where the value does not parse.
    """

    rows: np.ndarray
    keywords: pa.Array
    tokens: pa.Array

    def column(self, keyword: str, n_rows: int) -> pa.Array:
        """Tokens of ``keyword`` for rows ``0 .. n_rows - 1``, null where it is absent."""
        import pyarrow as pa
        import pyarrow.compute as pc

        where = np.flatnonzero(as_bools(pc.equal(self.keywords, keyword)))
        index = np.full(n_rows, -1, dtype=np.int64)
        index[self.rows[where]] = where
        return self.tokens.take(pa.array(index, mask=index < 0))

    def counts(self) -> dict[str, int]:
        """How many headers have each keyword."""
        import pyarrow as pa

        table = pa.table({"k": self.keywords}).group_by("k").aggregate([("k", "count")])
        return dict(zip(table["k"].to_pylist(), table["k_count"].to_pylist(), strict=False))


def _cards(headers: Sequence[str]) -> tuple[np.ndarray, pa.Array]:
    import pyarrow as pa

    # One byte a character; a non-ASCII byte reads as "?", as astropy presents it.
    text = "".join(headers).encode("ascii", errors="replace")
    lengths = np.fromiter((len(h) for h in headers), dtype=np.int64, count=len(headers))
    if np.any(lengths % _CARD):
        raise ValueError("headers must be whole 80-character cards")
    rows = np.repeat(np.arange(len(headers), dtype=np.int64), lengths // _CARD)
    fixed = pa.Array.from_buffers(pa.binary(_CARD), len(text) // _CARD, [None, pa.py_buffer(text)])
    return rows, fixed.cast(pa.binary()).cast(pa.string())


def keyword_values(headers: Sequence[str], *, only: Iterable[str] | None = None) -> KeywordValues:
    """The first value of each valued keyword of every header, as astropy reads it.

    Parameters
    ----------
    headers : sequence of str
        Header texts: 80-character cards of Latin-1 text (the file's bytes), up to
        and including ``END``; a non-ASCII character reads as ``?``, as in astropy.
    only : iterable of str, optional
        Keep only these keywords (upper case), for a search that needs a few.

    Returns
    -------
    KeywordValues
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = None if only is None else pa.array(sorted(set(only)), pa.string())
    rows, cards = _cards(headers)
    keyword = pc.utf8_upper(pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(cards, 0, 8)))
    commentary = pc.is_in(keyword, pa.array(_COMMENTARY))
    indicator = pc.equal(pc.utf8_slice_codeunits(cards, 8, 10), "= ")
    early = pc.find_substring(pc.utf8_slice_codeunits(cards, 0, 9), "= ")
    odd = pc.or_(
        pc.and_(pc.invert(commentary), pc.invert(indicator)),
        pc.or_(
            pc.is_in(keyword, pa.array(_ASTROPY_ONLY)),
            pc.and_(pc.greater_equal(early, 0), pc.less(early, 8)),
        ),
    )
    valued = pc.and_(indicator, pc.invert(commentary))
    if wanted is not None:
        valued = pc.and_(valued, pc.is_in(keyword, wanted))
    picked = np.flatnonzero(as_bools(valued))
    tokens = pc.utf8_rtrim_whitespace(
        pc.struct_field(
            pc.extract_regex(pc.utf8_slice_codeunits(cards.take(picked), 10, _CARD), _TOKEN),
            [0],
        )
    )
    rvkc = pc.fill_null(pc.match_substring_regex(tokens, _RVKC_TOKEN), False)
    astropy_rows = np.union1d(
        rows[as_bools(odd)],
        rows[picked][as_bools(rvkc)],
    )
    keep = ~np.isin(rows[picked], astropy_rows)
    picked_rows = rows[picked][keep]
    picked_keywords = keyword.take(picked[keep])
    tokens = tokens.filter(pa.array(keep))
    # First occurrence of each (header, keyword): astropy's header[keyword].
    codes = pc.dictionary_encode(picked_keywords)
    key = picked_rows * (len(codes.dictionary) + 1) + codes.indices.to_numpy()
    _, first = np.unique(key, return_index=True)
    first.sort()
    result_rows = [picked_rows[first]]
    result_keywords = [picked_keywords.take(first)]
    result_tokens = [tokens.take(first)]
    if astropy_rows.size:
        slow = _astropy_values(headers, astropy_rows, None if only is None else set(only))
        result_rows.append(slow[0])
        result_keywords.append(pa.array(slow[1], pa.string()))
        result_tokens.append(pa.array(slow[2], pa.string()))
    return KeywordValues(
        np.concatenate(result_rows),
        pa.concat_arrays(result_keywords),
        pa.concat_arrays(result_tokens),
    )


def token_of(value: object) -> str | None:
    """The token that `typed_values` reads back as ``value`` (None: no such token)."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, complex):
        return f"({value.real!r}, {value.imag!r})"
    return ""  # astropy's UNDEFINED


def _astropy_values(
    headers: Sequence[str], rows: np.ndarray, only: set[str] | None
) -> tuple[np.ndarray, list[str], list[str | None]]:
    from astropy.io.fits import Header
    from astropy.io.fits.verify import VerifyError

    out_rows: list[int] = []
    out_keywords: list[str] = []
    out_tokens: list[str | None] = []
    for row in rows.tolist():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = Header.fromstring(headers[row])
            seen: set[str] = set()
            for card in header.cards:
                name = card.keyword.upper()
                if name in seen or name in _COMMENTARY or (only is not None and name not in only):
                    continue
                seen.add(name)
                try:
                    token = token_of(header[card.keyword])
                except (VerifyError, ValueError, KeyError):
                    token = None
                out_rows.append(row)
                out_keywords.append(name)
                out_tokens.append(token)
    return np.asarray(out_rows, dtype=np.int64), out_keywords, out_tokens


@dataclass(frozen=True)
class TypedValues:
    """One keyword's values over many HDUs, split by type; each array is null elsewhere.

    Attributes
    ----------
    strings : pyarrow.Array
        String values: unquoted, ``''`` unescaped, trailing blanks stripped.
    booleans : pyarrow.Array
        Logical values (``T``/``F``).
    integers : pyarrow.Array
        Integer values (int64; larger integers appear as floats only).
    floats : pyarrow.Array
        Every number, integer or not, as float64.
    others : pyarrow.Array
        Complex values, as text; they match no comparison.
    """

    strings: pa.Array
    booleans: pa.Array
    integers: pa.Array
    floats: pa.Array
    others: pa.Array


def _where(mask: pa.Array, values: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(mask, values, pa.scalar(None, values.type))


def typed_values(tokens: pa.Array) -> TypedValues:
    """Read tokens as astropy reads card values (see the module description)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tokens = tokens.cast(pa.string())
    is_string = pc.fill_null(pc.starts_with(tokens, "'"), False)
    strings = pc.utf8_rtrim_whitespace(
        pc.replace_substring(pc.utf8_slice_codeunits(tokens, 1, -1), "''", "'")
    )
    is_bool = pc.fill_null(pc.is_in(tokens, pa.array(["T", "F"])), False)
    booleans = pc.equal(tokens, "T")
    clean = pc.replace_substring_regex(
        pc.replace_substring_regex(tokens, r"[ ]", ""), r"[dDe]", "E"
    )
    is_number = pc.fill_null(
        pc.match_substring_regex(clean, r"^[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:E[+-]?\d+)?$"), False
    )
    is_integer = pc.fill_null(pc.match_substring_regex(clean, r"^[+-]?\d{1,18}$"), False)
    unsigned = pc.replace_substring_regex(clean, r"^\+", "")
    integers = pc.cast(_where(is_integer, unsigned), pa.int64())
    floats = pc.cast(_where(is_number, unsigned), pa.float64())
    is_other = pc.fill_null(pc.starts_with(tokens, "("), False)
    return TypedValues(
        _where(is_string, strings),
        _where(is_bool, booleans),
        integers,
        floats,
        _where(is_other, tokens),
    )
