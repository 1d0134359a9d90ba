"""Comparisons with astropy's answers, shared by the unit and integration tests."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table

__all__ = ["assert_tables_equal", "same_values", "table_read"]


def table_read(path: Path, number: int) -> Table:
    """``Table.read(path, hdu=number)``: text columns as bytes, empty cells masked.

    Where astropy's Table reader fails (a text TNULL on a numeric column, as ASCII
    tables have), the table cloudfits documents for that case: ``Table.read`` of the
    HDU without those TNULL cards.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Table.read(path, hdu=number) opens so, but cannot take a tile-compressed
        # image as its table.
        with fits.open(
            path, memmap=False, character_as_bytes=True, disable_image_compression=True
        ) as hdul:
            hdu = hdul[number]
            try:
                return Table.read(hdu)
            except (TypeError, ValueError):
                # astropy decodes a text TNULL to NaN or 0, but its Table reader fails
                # on it: cloudfits reads with those TNULLs cleared and masks the cells.
                values = hdu.data
                masks = {}
                for i, column in enumerate(hdu.columns):
                    if isinstance(column.null, str) and values.field(i).dtype.kind in "iuf":
                        cells = np.char.strip(values.base.field(i))
                        masks[column.name] = cells == column.null.strip().encode()
                        column.null = None
                table = Table.read(hdu)
                for name, mask in masks.items():
                    if mask.any():
                        table[name] = MaskedColumn(
                            table[name], mask=mask | np.isnan(np.asarray(table[name], dtype=float))
                        )
                return table


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
