"""Byte spans: the one range merger, the split into parallel parts, and the engine's options.

Pure (no I/O). `merge_ranges` merges ``[start, end)`` ranges in any order, overlapping
or not, whose gaps are shorter than ``max_gap``; `coalesce` groups the ascending runs of
a plan by the same rule and then by the cost model of `cloudfits.fetch.cost` (runs
closer than ``max_gap`` bytes share a request, since the gap costs less than a request;
more gaps are merged while there are more requests than ``max_concurrency`` and merging
shortens the estimated wall time); `split_parts` cuts long spans into near-equal parts
that arrive in parallel.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .cost import DEFAULT_COST_MODEL, CostModel

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MAX_PART",
    "FetchOptions",
    "Span",
    "coalesce",
    "merge_ranges",
    "run_lengths",
    "split_parts",
]

DEFAULT_MAX_GAP = DEFAULT_COST_MODEL.gap_bytes
DEFAULT_MAX_PART = DEFAULT_COST_MODEL.part_bytes
DEFAULT_MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class FetchOptions:
    """Tuning of the range engine (see `cloudfits.fetch.cost` for where the defaults come from).

    Attributes
    ----------
    max_gap : int
        Runs separated by fewer bytes than this are fetched in one request
        (environment variable ``CLOUDFITS_MAX_GAP``; default 4,444, the bytes that
        cost as much as one request).
    max_part : int
        Longest single request in bytes; longer spans are split into parallel parts
        (``CLOUDFITS_MAX_PART``; default 6,000,000).
    max_concurrency : int
        Most requests in flight at once for one read (``CLOUDFITS_MAX_CONCURRENCY``;
        default 64, half the connections a provider pool holds by default).
    cost : CostModel
        The model used to decide on merging beyond ``max_gap``.
    """

    max_gap: int = DEFAULT_MAX_GAP
    max_part: int = DEFAULT_MAX_PART
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    cost: CostModel = field(default=DEFAULT_COST_MODEL, compare=False)

    @classmethod
    def from_environment(cls) -> FetchOptions:
        """Defaults, overridden by the ``CLOUDFITS_*`` environment variables."""
        values: dict[str, Any] = {}
        for name, var in (
            ("max_gap", "CLOUDFITS_MAX_GAP"),
            ("max_part", "CLOUDFITS_MAX_PART"),
            ("max_concurrency", "CLOUDFITS_MAX_CONCURRENCY"),
        ):
            if var in os.environ:
                values[name] = int(os.environ[var])
        return cls(**values).validated()

    def updated(
        self,
        *,
        max_gap: int | None = None,
        max_part: int | None = None,
        max_concurrency: int | None = None,
    ) -> FetchOptions:
        """A copy with the given values replaced (``None`` keeps the current one)."""
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("max_gap", max_gap),
                ("max_part", max_part),
                ("max_concurrency", max_concurrency),
            )
            if v is not None
        }
        return replace(self, **changes).validated() if changes else self

    def spans(self, offsets: np.ndarray, lengths: int | np.ndarray) -> list[Span]:
        """`coalesce` the runs at ``offsets`` with these options."""
        return coalesce(
            offsets,
            lengths,
            self.max_gap,
            max_concurrency=self.max_concurrency,
            cost=self.cost,
        )

    def validated(self) -> FetchOptions:
        """Return ``self``, or raise ``ValueError`` when a value is out of range."""
        if self.max_gap < 0 or self.max_part < 1 or self.max_concurrency < 1:
            raise ValueError(
                f"invalid fetch options {self}: max_gap >= 0, max_part >= 1,"
                " max_concurrency >= 1 are required"
            )
        return self


@dataclass(frozen=True)
class Span:
    """Runs ``first_run`` to ``last_run`` (exclusive), fetched as bytes ``[start, end)``."""

    start: int
    end: int
    first_run: int
    last_run: int


def run_lengths(run_offsets: np.ndarray, run_nbytes: int | np.ndarray) -> np.ndarray:
    lengths = np.broadcast_to(np.asarray(run_nbytes, dtype=np.int64), run_offsets.shape)
    return np.ascontiguousarray(lengths)


def coalesce(
    run_offsets: np.ndarray,
    run_nbytes: int | np.ndarray,
    max_gap: int,
    *,
    max_concurrency: int | None = None,
    cost: CostModel = DEFAULT_COST_MODEL,
) -> list[Span]:
    """Group ascending, non-overlapping runs into spans fetched by one request each.

    Runs whose gap is smaller than ``max_gap`` (or zero) are merged. When
    ``max_concurrency`` is given and more spans than that remain, the smallest
    remaining gaps are merged too, as many as minimise `CostModel.seconds`.
    """
    offsets = np.asarray(run_offsets, dtype=np.int64)
    lengths = run_lengths(offsets, run_nbytes)
    keep = lengths > 0
    if not np.all(keep):
        raise ValueError("coalesce needs runs of at least one byte")
    if offsets.size == 0:
        return []
    ends = offsets + lengths
    gaps = offsets[1:] - ends[:-1]
    if np.any(gaps < 0):
        raise ValueError("runs must be ascending and must not overlap")
    split = _splits(gaps, max_gap)
    if max_concurrency is not None and int(split.sum()) + 1 > max_concurrency:
        candidates = np.flatnonzero(split)
        order = candidates[np.argsort(gaps[candidates], kind="stable")]
        extra = np.concatenate(([0], np.cumsum(gaps[order])))
        base = int(np.sum(ends[-1:] - offsets[:1])) - int(gaps[split].sum())
        requests = candidates.size + 1 - np.arange(candidates.size + 1)
        estimates = cost.seconds_array(requests, base + extra, max_concurrency)
        best = int(np.argmin(estimates))
        split[order[:best]] = False
    breaks = np.flatnonzero(split) + 1
    firsts = np.concatenate(([0], breaks)).tolist()
    lasts = [*breaks.tolist(), int(offsets.size)]
    return [
        Span(int(offsets[a]), int(ends[b - 1]), a, b) for a, b in zip(firsts, lasts, strict=True)
    ]


def split_parts(start: int, end: int, max_part: int) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into pieces of at most ``max_part`` bytes, of near-equal size."""
    if end <= start:
        return []
    count = -(-(end - start) // max_part)
    bounds = [start + (end - start) * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def _splits(gaps: np.ndarray, max_gap: int) -> np.ndarray:
    """Where neighbouring ranges stay apart: a real gap (> 0 bytes) of at least ``max_gap``."""
    split: np.ndarray = (gaps > 0) & (gaps >= max_gap)
    return split


_FEW_RANGES = 8
"""Up to this many ranges, `merge_ranges` merges in Python: the array operations of the
general case cost more than the merge (the two header runs of each object indexed)."""


def merge_ranges(
    starts: np.ndarray, ends: np.ndarray, max_gap: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge ``[starts[i], ends[i])`` ranges, in any order and possibly overlapping.

    Ranges that overlap, touch, or are separated by fewer than ``max_gap`` bytes become
    one block; empty ranges are dropped.

    Returns
    -------
    block_starts, block_ends : numpy.ndarray
        The merged blocks, ascending.
    block_of : numpy.ndarray
        For each input range, the index of the block holding it (-1 for an empty range).
    """
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    ends = np.asarray(ends, dtype=np.int64).reshape(-1)
    if starts.size <= _FEW_RANGES:
        firsts, lasts, blocks = _merge_few(starts.tolist(), ends.tolist(), max_gap)
        return (
            np.array(firsts, dtype=np.int64),
            np.array(lasts, dtype=np.int64),
            np.array(blocks, dtype=np.int64),
        )
    return _merge_many(starts, ends, max_gap)


def _merge_few(
    starts: list[int], ends: list[int], max_gap: int
) -> tuple[list[int], list[int], list[int]]:
    """`merge_ranges` of a few ranges, one after another in order of their starts."""
    block_of = [-1] * len(starts)
    firsts: list[int] = []
    lasts: list[int] = []
    for i in sorted((i for i in range(len(starts)) if ends[i] > starts[i]), key=starts.__getitem__):
        gap = starts[i] - lasts[-1] if lasts else 0
        if lasts and not (gap > 0 and gap >= max_gap):
            lasts[-1] = max(lasts[-1], ends[i])
        else:
            firsts.append(starts[i])
            lasts.append(ends[i])
        block_of[i] = len(firsts) - 1
    return firsts, lasts, block_of


def _merge_many(
    starts: np.ndarray, ends: np.ndarray, max_gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`merge_ranges` with array operations."""
    block_of = np.full(starts.shape, -1, dtype=np.int64)
    keep = np.flatnonzero(ends > starts)
    if keep.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), block_of
    order = keep[np.argsort(starts[keep], kind="stable")]
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    breaks = np.flatnonzero(_splits(s[1:] - reach[:-1], max_gap)) + 1
    firsts = np.concatenate(([0], breaks))
    lasts = np.concatenate((breaks, [s.size])) - 1
    block_of[order] = np.searchsorted(breaks, np.arange(s.size), side="right")
    return s[firsts], reach[lasts], block_of
