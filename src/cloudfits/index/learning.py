"""What a scan of many objects learns as it goes: read sizes, and whether predicting pays.

Used by `cloudfits.index.scanning`: the first objects scanned say how many bytes the
next ones' header reads need, and how often their layouts predict the others'.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..fits.scan import AFTER_DATA_READ, BLOCK, HDULayout, padded

__all__ = ["PredictionScore", "ReadSizes"]


class ReadSizes:
    """The read sizes a scan of many objects learns from the objects scanned so far.

    A header read costs a request; the bytes it fetches past the header are paid for
    and thrown away. With nothing known, an object's first read is the speculative
    read and a read where a header follows data is `AFTER_DATA_READ` (the cost
    model's break-even). Once objects of the source have been scanned, their headers
    say what the next ones need: the first read covers the longest run of headers
    seen at an object's start (up to its first data byte), a read after data the
    longest later header, so most reads fetch header bytes only (a longer header
    costs one more read). Neither grows past the speculative read.
    """

    def __init__(self, speculative: int) -> None:
        self.speculative = padded(max(speculative, BLOCK))
        self._first = 0
        self._after = 0
        self._lock = threading.Lock()

    @property
    def first(self) -> int:
        """Bytes of an object's first read."""
        return min(self._first, self.speculative) if self._first else self.speculative

    @property
    def after_data(self) -> int:
        """Bytes of a read where a header starts after data."""
        return min(self._after, self.speculative) if self._after else AFTER_DATA_READ

    def learn(self, hdus: Sequence[HDULayout]) -> None:
        """Take the header sizes of one scanned object into account."""
        if not hdus:
            return
        lead = next((h for h in hdus if h.data_size), hdus[-1])
        later = [
            h.data_offset - h.header_offset for h in hdus if h.header_offset > lead.data_offset
        ]
        with self._lock:
            self._first = max(self._first, padded(lead.data_offset))
            self._after = max(self._after, *later, 0)


class PredictionScore:
    """Whether layout predictions pay off in this scan.

    Objects of one size usually share their layout (an instrument's products), and a
    prediction saves a scan's chain of reads; where same-sized objects differ (images
    of varying shapes), each failed prediction costs a read of bytes that are not
    headers and the scan after it. Once more predictions have failed than succeeded
    (and at least three have failed), the scan stops predicting.
    """

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @property
    def worth_trying(self) -> bool:
        """Whether to predict the next object's layout."""
        return self.misses < 3 or self.misses <= self.hits

    def record(self, hit: bool) -> None:
        """Count one prediction's outcome."""
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
