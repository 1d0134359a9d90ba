"""The one check of every range answer against what is known about the object.

A provider that offers ``read_range`` reports what it received (a
`~cloudfits.providers.answers.RangeAnswer`); before the bytes are used, `check_answer`
compares it with the read that was asked for and with the object's known size and
ETag (from the index, or from the first answer and ``head``):

- the status is 206, 200 (the range ignored) or 416 (past the end);
- no ``Content-Encoding`` other than ``identity`` (the request asks for it): a coded
  body is never taken for the object's bytes;
- a 206's ``Content-Range`` starts where asked and ends where asked (or at the end of
  the object), and its total equals the known size;
- the body holds exactly those bytes: it was read one byte past the end, and a longer
  body is an error, as is a shorter one;
- a 200's ``Content-Length`` equals the known size;
- with a known ETag, the answer names that version.

A failure raises `cloudfits.RangeResponseError` (retried by the engine), or
`cloudfits.StaleIndexError` when the answer names another version (ETag) of the
object. Every message names the object, the range and what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RangeResponseError, StaleIndexError
from ..providers.answers import RangeAnswer

__all__ = ["Known", "check_answer"]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"bytes \*/(\d+)$")


@dataclass
class Known:
    """What is known of the object a reader reads (updated by the first answers).

    Attributes
    ----------
    size : int or None
        The object's size in bytes.
    etag : str or None
        The version every answer must come from.
    """

    size: int | None = None
    etag: str | None = None


def _total(answer: RangeAnswer) -> int | None:
    text = (answer.content_range or "").strip()
    match = _CONTENT_RANGE.match(text) or _UNSATISFIED.match(text)
    if match is None or match.groups()[-1] == "*":
        return None
    return int(match.groups()[-1])


def check_answer(answer: RangeAnswer, start: int, end: int, known: Known, *, uri: str) -> int:
    """Raise unless ``answer`` holds exactly bytes ``[start, end)`` of the known object.

    Returns the number of bytes of the range the answer holds (fewer than asked only
    at the end of the object). Where the size or ETag is not yet known, ``known`` takes
    them from this answer, so that every later answer must agree.
    """
    where = f"{uri}: bytes [{start}, {end})"
    coding = (answer.content_encoding or "").strip().lower()
    if coding not in ("", "identity"):
        raise RangeResponseError(
            f"{where}: the answer is {coding!r}-encoded although identity was asked for;"
            " a coded body is never taken for the object's bytes"
        )
    _check_version(answer, known, where)
    if answer.status == 416:
        total = _total(answer)
        size = known.size if known.size is not None else total
        if size is None or start < size or (total is not None and total != size):
            raise RangeResponseError(
                f"{where}: 416 with {answer.content_range!r}, but the object has"
                f" {size if size is not None else 'an unknown number of'} bytes"
            )
        return 0
    if answer.status == 206:
        return _check_partial(answer, start, end, known, where)
    if answer.status == 200:
        return _check_whole(answer, start, end, known, where)
    raise RangeResponseError(f"{where}: unexpected HTTP {answer.status}")


def _check_version(answer: RangeAnswer, known: Known, where: str) -> None:
    if known.etag is None:
        if answer.etag is not None and answer.status in (200, 206):
            known.etag = answer.etag
        return
    if answer.etag is None:
        if answer.status in (200, 206):
            raise RangeResponseError(
                f"{where}: the answer names no version (no ETag), {known.etag} is expected"
            )
        return
    if answer.etag != known.etag:
        raise StaleIndexError(
            f"{where}: the object changed (ETag {answer.etag}, {known.etag} is expected):"
            " rebuild the index, or open it again"
        )


def _check_size(total: int, known: Known, where: str) -> None:
    if known.size is None:
        known.size = total
    elif total != known.size:
        raise RangeResponseError(
            f"{where}: the answer says the object has {total} bytes, {known.size} are"
            " expected: it changed, or the server sent something else"
        )


def _check_partial(answer: RangeAnswer, start: int, end: int, known: Known, where: str) -> int:
    match = _CONTENT_RANGE.match((answer.content_range or "").strip())
    if match is None:
        raise RangeResponseError(f"{where}: 206 without a valid Content-Range")
    first, last, total_text = int(match.group(1)), int(match.group(2)), match.group(3)
    if total_text != "*":
        _check_size(int(total_text), known, where)
    size = known.size
    expected_last = (min(end, size) if size is not None else end) - 1
    if first != start or last != expected_last:
        raise RangeResponseError(
            f"{where}: the answer is {answer.content_range!r}, other bytes than asked for"
        )
    n = last - first + 1
    if answer.received != n or answer.overflow:
        longer = "more" if answer.overflow else str(answer.received)
        raise RangeResponseError(
            f"{where}: the answer's Content-Range is {answer.content_range!r} but its body"
            f" holds {longer} bytes"
        )
    if answer.content_length is not None and answer.content_length != n:
        raise RangeResponseError(
            f"{where}: Content-Length {answer.content_length} for {n} bytes of Content-Range"
        )
    return n


def _check_whole(answer: RangeAnswer, start: int, end: int, known: Known, where: str) -> int:
    length = answer.content_length
    if length is None:
        if known.size is None or end < known.size or answer.overflow:
            raise RangeResponseError(
                f"{where}: the server ignored the range and sent a body of unknown length"
            )
        length = known.size
    _check_size(length, known, where)
    expected = max(0, min(end, length) - start)
    if answer.received != expected or (end >= length and answer.overflow):
        raise RangeResponseError(
            f"{where}: a 200 of {length} bytes, but {answer.received} of the asked bytes came"
        )
    return expected
