"""Layout prediction: where another object's headers lie, and whether its bytes say so.

An archive holds many objects made by one pipeline: same size, same HDUs, same
header lengths (TESS cubes of one sector, the FFIs of a camera). Once one of them is
scanned, its layout predicts where every header of the others lies, so each of them
costs one read of all its header runs at once instead of a chain of dependent reads.
A prediction is never trusted: `verify_prediction` parses the bytes read at the
predicted places and accepts them only where they give, header by header, exactly
the layout a scan would have found; otherwise the caller scans the object.
"""

from __future__ import annotations

from collections.abc import Sequence

from .cards import CARD, end_card_index, standard_data_size
from .scan import BLOCK, HDULayout, padded

__all__ = ["header_runs", "predictable", "verify_prediction"]


def predictable(template: Sequence[HDULayout], size: int, first_read: int = 0) -> bool:
    """Whether ``template`` (a scan's layouts of an object of ``size`` bytes) can predict
    others: its HDUs follow one another up to the object's end, with nothing after, and
    some header lies beyond the ``first_read`` bytes a scan reads at once (otherwise a
    scan costs one read too, and a wrong prediction would cost a second)."""
    if not template:
        return False
    last = template[-1]
    return last.data_offset + padded(last.data_size) == size and last.data_offset > first_read


def header_runs(template: Sequence[HDULayout]) -> list[tuple[int, int]]:
    """``[start, end)`` of each header of ``template``, its padding included."""
    return [(t.header_offset, t.data_offset) for t in template]


def verify_prediction(
    template: Sequence[HDULayout], size: int, runs: Sequence[bytes]
) -> list[HDULayout] | None:
    """The layouts of an object of ``size`` bytes whose `header_runs` of ``template``
    read as ``runs``, or None when the bytes do not bear the prediction out.

    Each run must be one whole header: it starts with ``SIMPLE`` (the first) or
    ``XTENSION``, its first END card lies in its last block, its cards are printable,
    and its size cards (read by `cloudfits.fits.cards.standard_data_size`) put the next
    header where the template has it, the last HDU ending at the object's end.
    """
    if len(runs) != len(template) or not predictable(template, size):
        return None
    layouts = []
    offset = 0
    for number, (t, raw) in enumerate(zip(template, runs, strict=True)):
        first = b"SIMPLE  =" if number == 0 else b"XTENSION="
        if t.header_offset != offset or len(raw) != t.data_offset - t.header_offset:
            return None
        end = end_card_index(raw)
        if not raw.startswith(first) or end < len(raw) - BLOCK or end < 0:
            return None
        cards = raw[: end + CARD]
        nbytes = standard_data_size(cards)
        if nbytes is None:
            return None
        layouts.append(HDULayout(t.header_offset, t.data_offset, nbytes, cards.decode("ascii")))
        offset = t.data_offset + padded(nbytes)
    return layouts if offset == size else None
