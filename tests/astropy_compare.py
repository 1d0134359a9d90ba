"""Comparisons with astropy's answers, shared by the unit and integration tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table

__all__ = ["assert_tables_equal", "same_values"]


def same_values(got: Any, expected: Any) -> bool:
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return False
    if got.dtype.kind == "O" or expected.dtype.kind == "O":
        return all(same_values(a, b) for a, b in zip(got.ravel(), expected.ravel(), strict=True))
    if got.dtype.kind in "fc":
        return bool(np.array_equal(got, expected, equal_nan=True))
    return bool(np.array_equal(got, expected))


def assert_tables_equal(got: Table, expected: Table) -> None:
    assert got.colnames == expected.colnames
    assert len(got) == len(expected)
    for name in expected.colnames:
        g, e = got[name], expected[name]
        assert g.unit == e.unit, name
        assert g.dtype.newbyteorder("=") == e.dtype.newbyteorder("="), name
        g_mask = getattr(g, "mask", None)
        e_mask = getattr(e, "mask", None)
        assert same_values(np.ma.getmaskarray(g), np.ma.getmaskarray(e)), name
        if g_mask is not None or e_mask is not None:
            assert same_values(np.ma.getdata(g), np.ma.getdata(e)), name
        else:
            assert same_values(g, e), name
    assert dict(got.meta) == dict(expected.meta)
