"""Turn a numpy basic index on an image into byte runs. Pure: no I/O.

A key selects, on every axis, an arithmetic progression of indices. The trailing
axes that are selected whole, plus the last partly selected axis when its step is 1,
form one contiguous run of bytes; the runs repeat over the remaining outer axes. The
runs are listed in ascending file order, which is also the C order of a buffer of
shape `ReadPlan.buffer_shape`: run ``i`` fills bytes ``[i * run_nbytes, (i + 1) *
run_nbytes)`` of that buffer. `ReadPlan.finish` then turns the buffer into the array
numpy would return (dropping integer-indexed axes, reversing negative steps, adding
new axes).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

__all__ = ["AxisSelection", "ReadPlan", "plan_section", "normalize_key"]


@dataclass(frozen=True)
class AxisSelection:
    """Indices ``first, first + step, ...`` (``count`` of them, ascending) on one axis."""

    first: int
    step: int
    count: int
    length: int

    @property
    def is_whole(self) -> bool:
        return self.first == 0 and self.step == 1 and self.count == self.length


@dataclass(frozen=True)
class ReadPlan:
    """Byte runs to fetch for one section read.

    Attributes
    ----------
    run_offsets : numpy.ndarray
        Start of each run in bytes, relative to the start of the HDU's data; ascending.
    run_nbytes : int
        Length of every run in bytes.
    buffer_shape : tuple of int
        Shape of the buffer the runs fill in order (one entry per data axis).
    finish : tuple
        Basic index applied to the filled buffer to give numpy's result.
    """

    run_offsets: np.ndarray
    run_nbytes: int
    buffer_shape: tuple[int, ...]
    finish: tuple[Any, ...]

    @property
    def nbytes(self) -> int:
        return int(self.run_offsets.size) * self.run_nbytes


def _as_index(item: Any) -> int | None:
    if isinstance(item, (bool, np.bool_)):
        return None
    try:
        return operator.index(item)
    except TypeError:
        return None


def normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[list[AxisSelection], tuple[Any, ...]]:
    """Validate a basic index and express it as one ascending selection per axis.

    Returns the selections and the key that finishes the buffer into numpy's result.

    Raises
    ------
    IndexError
        For an index out of range or too many indices, as numpy does.
    TypeError
        For anything but basic indexing (integer or boolean arrays, floats, ...).
    """
    items = key if isinstance(key, tuple) else (key,)
    n_ellipsis = sum(1 for item in items if item is Ellipsis)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consuming = sum(1 for item in items if item is not None and item is not Ellipsis)
    if consuming > len(shape):
        raise IndexError(
            f"too many indices: the data is {len(shape)}-dimensional, but {consuming} were indexed"
        )
    expanded: list[Any] = []
    for item in items:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - consuming))
        else:
            expanded.append(item)
    if n_ellipsis == 0:
        expanded.extend([slice(None)] * (len(shape) - consuming))

    selections: list[AxisSelection] = []
    finish: list[Any] = []
    axis = 0
    for item in expanded:
        if item is None:
            finish.append(None)
            continue
        length = shape[axis]
        index = _as_index(item)
        if index is not None:
            if not -length <= index < length:
                raise IndexError(
                    f"index {index} is out of bounds for axis {axis} with size {length}"
                )
            selections.append(AxisSelection(index % length, 1, 1, length))
            finish.append(0)
        elif isinstance(item, slice):
            start, stop, step = item.indices(length)
            picked = range(start, stop, step)
            count = len(picked)
            if count == 0:
                selections.append(AxisSelection(0, 1, 0, length))
                finish.append(slice(None))
            elif step > 0:
                selections.append(AxisSelection(picked[0], step, count, length))
                finish.append(slice(None))
            else:
                selections.append(AxisSelection(picked[-1], -step, count, length))
                finish.append(slice(None, None, -1))
        else:
            raise TypeError(
                "only basic indexing is supported (integers, slices, Ellipsis, None);"
                f" got {type(item).__name__}"
            )
        axis += 1
    return selections, tuple(finish)


def plan_section(
    shape: tuple[int, ...], itemsize: int, key: Any, *, widen_below: int = 0
) -> ReadPlan:
    """Plan the byte runs that ``array[key]`` needs from a C-ordered array on disk.

    Parameters
    ----------
    shape : tuple of int
        Numpy shape of the stored array.
    itemsize : int
        Bytes per element.
    key : object
        A numpy basic index.
    widen_below : int
        Read an axis whole, and pick the selected indices from the buffer, where every
        gap its selection leaves between the bytes read is smaller than this (the
        gaps a read merges anyway: its ``max_gap``). One plane of interleaved planes,
        or every other column, is then a few long runs instead of one run per element
        (3.2 million of them for one plane of a 50x50-pixel TESS cutout). Every
        stretch of bytes not asked for that a request then reads is shorter than
        ``widen_below``, and no read takes more requests. 0: never.
    """
    selections, finish = normalize_key(key, shape)
    buffer_shape = tuple(s.count for s in selections)
    if not selections or prod(buffer_shape) == 0:
        empty = np.zeros(0 if prod(buffer_shape) == 0 else 1, dtype=np.int64)
        run = 0 if empty.size == 0 else itemsize
        return ReadPlan(empty, run, buffer_shape, finish)
    if widen_below <= 0:
        return _runs(shape, itemsize, selections, finish)
    # Widen as many trailing axes as qualify; fewer where reading the fill would pull
    # the runs around it closer than ``widen_below``, merging gaps the exact runs
    # keep (each widened run holds ``fill`` bytes that are not asked for).
    levels = len(selections)
    while levels > 0:
        wide, done, fill, levels = _widen(selections, finish, itemsize, widen_below, levels)
        if not levels:
            break
        plan = _runs(shape, itemsize, wide, done)
        gaps = np.diff(plan.run_offsets) - plan.run_nbytes
        if np.all((gaps >= widen_below) | (gaps + fill < widen_below)):
            return plan
        levels -= 1
    return _runs(shape, itemsize, selections, finish)


def _runs(
    shape: tuple[int, ...],
    itemsize: int,
    selections: list[AxisSelection],
    finish: tuple[Any, ...],
) -> ReadPlan:
    """The runs of non-empty ``selections``, in file order."""
    buffer_shape = tuple(s.count for s in selections)
    # The trailing axes selected whole are contiguous with each other.
    k = len(selections) - 1
    while k >= 0 and selections[k].is_whole:
        k -= 1
    if k < 0:
        return ReadPlan(np.zeros(1, dtype=np.int64), prod(shape) * itemsize, buffer_shape, finish)
    inner = prod(shape[k + 1 :])
    outer_axes = k + 1
    run_elements = inner
    if selections[k].step == 1:
        run_elements = selections[k].count * inner
        outer_axes = k

    strides = [prod(shape[j + 1 :]) for j in range(len(shape))]
    offsets = np.zeros((), dtype=np.int64)
    for j in range(outer_axes):
        s = selections[j]
        along = (s.first + s.step * np.arange(s.count, dtype=np.int64)) * strides[j]
        offsets = np.add.outer(offsets, along)
    if outer_axes == k:
        offsets = offsets + selections[k].first * strides[k]
    run_offsets = np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1) * itemsize
    return ReadPlan(run_offsets, run_elements * itemsize, buffer_shape, finish)


def _widen(
    selections: list[AxisSelection],
    finish: tuple[Any, ...],
    itemsize: int,
    below: int,
    most: int,
) -> tuple[list[AxisSelection], tuple[Any, ...], int, int]:
    """Select up to ``most`` trailing partly selected axes whole where the gaps they
    leave are under ``below`` bytes (see `plan_section`), the finishing key picking
    the indices asked for. Returns the selections, the key, the bytes of a widened run
    not asked for, and how many axes were widened."""
    selections = list(selections)
    slots = [i for i, item in enumerate(finish) if item is not None]
    done = list(finish)
    widened = 0
    # The axes after ``axis`` are read whole: one index of ``axis`` is ``inner`` bytes,
    # of which the key selects those from ``lo`` to ``hi``.
    inner, lo, hi = itemsize, 0, itemsize
    for axis in range(len(selections) - 1, -1, -1):
        s = selections[axis]
        last = s.first + (s.count - 1) * s.step
        first_byte, end_byte = s.first * inner + lo, last * inner + hi
        if not s.is_whole:
            repeated = any(o.count > 1 for o in selections[:axis])
            between = s.step * inner - (hi - lo) if s.count > 1 else 0
            # Before the first selected byte and after the last: between repetitions
            # of the outer axes, or at the ends of the read.
            outside = s.length * inner - (end_byte - first_byte)
            if widened == most or not (repeated or between) or max(between, outside) >= below:
                break
            old = done[slots[axis]]
            if isinstance(old, slice) and old.step == -1:
                done[slots[axis]] = slice(last, s.first - 1 if s.first else None, -s.step)
            elif isinstance(old, slice):
                done[slots[axis]] = slice(s.first, last + 1, s.step)
            else:  # an integer index
                done[slots[axis]] = s.first
            selections[axis] = AxisSelection(0, 1, s.length, s.length)
            widened += 1
        inner, lo, hi = inner * s.length, first_byte, end_byte
    return selections, tuple(done), inner - (hi - lo), widened
