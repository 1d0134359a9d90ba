"""The planner is pure: check it against numpy slicing of in-memory arrays."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, basic_indices

from cloudfits.fetch import coalesce, spans, split_parts
from cloudfits.fits.planner import plan_section


def _gather(array: np.ndarray, key: object) -> tuple[np.ndarray, object]:
    raw = array.tobytes()
    plan = plan_section(array.shape, array.itemsize, key)
    chunks = [raw[o : o + plan.run_nbytes] for o in plan.run_offsets.tolist()]
    buffer = np.frombuffer(b"".join(chunks), dtype=array.dtype).reshape(plan.buffer_shape)
    return buffer[plan.finish], plan


@st.composite
def arrays_and_keys(draw: st.DrawFn) -> tuple[np.ndarray, object]:
    shape = draw(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=7))
    key = draw(basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    itemsize = draw(st.sampled_from([1, 2, 4, 8]))
    array = np.arange(int(np.prod(shape)), dtype=f"<u{itemsize}").reshape(shape)
    return array, key


@settings(max_examples=1000, deadline=None)
@given(arrays_and_keys())
def test_plan_reproduces_numpy_basic_indexing(case: tuple[np.ndarray, object]) -> None:
    array, key = case
    got, plan = _gather(array, key)
    expected = array[key]
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    # Exact: the runs hold exactly the selected elements, no byte more.
    assert plan.nbytes == expected.size * array.itemsize
    offsets = plan.run_offsets
    assert np.all(np.diff(offsets) >= plan.run_nbytes), "runs must be ascending and disjoint"


@settings(max_examples=300, deadline=None)
@given(arrays_and_keys(), st.integers(0, 64))
def test_coalesced_spans_cover_runs_exactly(case: tuple[np.ndarray, object], max_gap: int) -> None:
    """Spans are disjoint, separated by at least max_gap bytes, and hold every run."""
    array, key = case
    plan = plan_section(array.shape, array.itemsize, key)
    spans = coalesce(plan.run_offsets, plan.run_nbytes, max_gap)
    if plan.nbytes == 0:
        assert spans == []
        return
    assert spans[0].first_run == 0
    assert spans[-1].last_run == plan.run_offsets.size
    for before, after in itertools.pairwise(spans):
        assert before.last_run == after.first_run
        gap = after.start - before.end
        assert gap > 0
        assert gap >= max_gap
    for span in spans:
        runs = plan.run_offsets[span.first_run : span.last_run]
        assert span.start == runs[0]
        assert span.end == runs[-1] + plan.run_nbytes
        # Inside a span, the bytes skipped between runs are each below max_gap.
        inner_gaps = np.diff(runs) - plan.run_nbytes
        assert np.all(inner_gaps >= 0)
        assert np.all((inner_gaps == 0) | (inner_gaps < max(max_gap, 1)))


@settings(max_examples=1000, deadline=None)
@given(arrays_and_keys(), st.integers(1, 200))
def test_widened_plan_gives_numpy_values_and_reads_only_short_holes(
    case: tuple[np.ndarray, object], max_gap: int
) -> None:
    """Reading axes whole where the gaps are short: numpy's values, no more runs or
    requests, and every unselected stretch a request reads is under ``max_gap`` bytes
    (the holes the cost model reads through anyway)."""
    array, key = case
    exact = plan_section(array.shape, array.itemsize, key)
    plan = plan_section(array.shape, array.itemsize, key, widen_below=max_gap)
    raw = array.tobytes()
    chunks = [raw[o : o + plan.run_nbytes] for o in plan.run_offsets.tolist()]
    buffer = np.frombuffer(b"".join(chunks), dtype=array.dtype).reshape(plan.buffer_shape)
    got, expected = buffer[plan.finish], array[key]
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert plan.run_offsets.size <= exact.run_offsets.size
    if exact.nbytes == 0:
        return
    spans = coalesce(plan.run_offsets, plan.run_nbytes, max_gap)
    assert len(spans) <= len(coalesce(exact.run_offsets, exact.run_nbytes, max_gap))
    selected = np.zeros(len(raw), dtype=bool)
    for offset in exact.run_offsets.tolist():
        selected[offset : offset + exact.run_nbytes] = True
    for span in spans:
        inside = selected[span.start : span.end]
        assert inside[0] or span.start == 0 or not selected[span.start - 1]
        edges = np.flatnonzero(np.diff(np.concatenate(([1], inside.astype(np.int8), [1]))))
        holes = edges[1::2] - edges[::2]  # lengths of the unselected stretches
        assert holes.size == 0 or int(holes.max()) < max_gap


def test_one_plane_of_a_tess_cutout_is_read_as_whole_pixels() -> None:
    """Plane 0 of (rows, columns, frames, 2): one run per row, not one per value."""
    shape = (64, 64, 20, 2)
    key = (slice(10, 20), slice(30, 40), slice(None), 0)
    assert plan_section(shape, 4, key).run_offsets.size == 10 * 10 * 20
    plan = plan_section(shape, 4, key, widen_below=4444)
    assert plan.run_offsets.size == 10
    assert plan.run_nbytes == 10 * 20 * 2 * 4
    # A far plane selection keeps exact runs: the gaps are too long to merge.
    sparse = plan_section((64, 64, 2000), 4, (slice(0, 2), slice(0, 2), 0), widen_below=4444)
    assert sparse.run_offsets.size == 4


def test_tess_cutout_is_one_run_per_row() -> None:
    shape = (64, 64, 20, 2)
    plan = plan_section(shape, 4, (slice(10, 20), slice(30, 40), slice(None), slice(None)))
    assert plan.run_offsets.size == 10
    assert plan.run_nbytes == 10 * 20 * 2 * 4
    row = 64 * 20 * 2 * 4
    assert plan.run_offsets.tolist() == [(10 + i) * row + 30 * 20 * 2 * 4 for i in range(10)]


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ((0, 0, 0), IndexError),
        ((5,), IndexError),
        ((-6,), IndexError),
        ((..., ...), IndexError),
        (([0, 1],), TypeError),
        ((np.array([True, False]),), TypeError),
        ((1.5,), TypeError),
        ((True,), TypeError),
    ],
)
def test_invalid_keys_raise_like_numpy(key: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        plan_section((5, 4), 4, key)


def test_coalesce_merges_small_gaps_only() -> None:
    offsets = np.array([0, 100, 200, 10_000, 10_050], dtype=np.int64)
    spans = coalesce(offsets, 50, max_gap=60)
    assert [(s.start, s.end, s.first_run, s.last_run) for s in spans] == [
        (0, 250, 0, 3),
        (10_000, 10_100, 3, 5),
    ]
    # With no gap allowed, only touching runs merge.
    spans = coalesce(offsets, 50, max_gap=0)
    assert [(s.start, s.end) for s in spans] == [(0, 50), (100, 150), (200, 250), (10_000, 10_100)]


def test_split_parts_covers_span_exactly() -> None:
    parts = split_parts(10, 1_000, 300)
    assert parts == [(10, 257), (257, 505), (505, 752), (752, 1000)]


@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 15)), max_size=spans._FEW_RANGES),
    st.integers(-2, 10),
)
@example([(0, 8), (10, 8)], 5)  # a gap of exactly max_gap bytes stays apart
@example([(0, 8), (5, 8)], 0)  # touching ranges merge
def test_a_few_ranges_merge_as_many_do(ranges: list[tuple[int, int]], max_gap: int) -> None:
    """The Python merge of a few ranges gives what the array merge gives."""
    starts = [a for a, _ in ranges]
    ends = [a + n - 3 for a, n in ranges]  # some empty, some touching, some overlapping
    few = spans._merge_few(starts, ends, max_gap)
    many = spans._merge_many(
        np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), max_gap
    )
    assert few == tuple(a.tolist() for a in many)
    merged = spans.merge_ranges(np.array(starts), np.array(ends), max_gap)
    assert [a.dtype for a in merged] == [np.dtype(np.int64)] * 3
    assert tuple(a.tolist() for a in merged) == few
