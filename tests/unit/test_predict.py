"""Layout prediction: accepted only where the bytes give exactly what a scan finds."""

from __future__ import annotations

import pytest

from cloudfits.fits.predict import header_runs, predictable, verify_prediction
from cloudfits.fits.scan import HDULayout, scan_fits
from cloudfits.testing.generated import GeneratedCube


def _scan(cube: GeneratedCube) -> list[HDULayout]:
    return scan_fits(cube.read, cube.size, name=cube.name)


def _runs(cube: GeneratedCube, template: list[HDULayout]) -> list[bytes]:
    return [cube.read(a, b) for a, b in header_runs(template)]


def test_a_cube_of_the_same_layout_is_predicted_exactly() -> None:
    template = _scan(GeneratedCube(0, (20, 30, 17, 2)))
    other = GeneratedCube(9, (20, 30, 17, 2))
    assert verify_prediction(template, other.size, _runs(other, template)) == _scan(other)


def test_same_size_other_header_places_is_refused() -> None:
    a, b = GeneratedCube(0, (20, 30, 17, 2)), GeneratedCube(1, (20, 20, 25, 2))
    assert a.size == b.size
    template = _scan(a)
    assert _scan(b) != template
    assert verify_prediction(template, b.size, _runs(b, template)) is None


def test_same_places_other_shape_reads_the_other_shape() -> None:
    a, b = GeneratedCube(0, (20, 30, 17, 2)), GeneratedCube(2, (30, 20, 17, 2))
    template = _scan(a)
    predicted = verify_prediction(template, b.size, _runs(b, template))
    assert predicted == _scan(b)
    assert predicted is not None
    assert "NAXIS4  =                   30" in predicted[1].header


@pytest.mark.parametrize(
    "damage",
    ["first", "end_early", "no_end", "size_card", "unprintable", "short"],
)
def test_damaged_runs_are_refused(damage: str) -> None:
    cube = GeneratedCube(3, (20, 30, 17, 2))
    template = _scan(cube)
    runs = [bytearray(r) for r in _runs(cube, template)]
    table = runs[-1]
    if damage == "first":
        table[:8] = b"XTENSIOX"
    elif damage == "end_early":  # an END card in the first of the table's 4 blocks
        table[80 * 10 : 80 * 11] = b"END".ljust(80)
    elif damage == "no_end":
        at = table.find(b"END".ljust(80))
        table[at : at + 3] = b"   "
    elif damage == "size_card":  # another row count: the table would run past the end
        at = table.find(b"NAXIS2  =")
        table[at : at + 80] = b"NAXIS2  =                 9999".ljust(80)
    elif damage == "unprintable":
        table[200] = 0x07
    else:
        del table[-1]
    assert verify_prediction(template, cube.size, [bytes(r) for r in runs]) is None


def test_templates_with_bytes_after_the_last_hdu_do_not_predict() -> None:
    cube = GeneratedCube(0, (20, 30, 17, 2))
    template = _scan(cube)
    assert predictable(template, cube.size)
    assert not predictable(template, cube.size + 2880)
    assert not predictable([], 0)
