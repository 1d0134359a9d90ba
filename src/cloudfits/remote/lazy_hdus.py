"""The HDUs of an opened object, found as far as they are asked for.

``cloudfits.open`` scans the headers its first read holds; the next header of a TESS
cube lies 45 GB further on, after the image, and a cutout of the image does not
need it. `LazyHDUs` keeps the scan where it stopped and goes on only when an HDU
beyond those found is asked for (``f[2]``, ``len(f)``, ``f.info()``, a name that
is not among the first HDUs), as astropy's ``fits.open`` reads HDUs lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from ..fits.scan import HDULayout, HDUScanner

__all__ = ["LazyHDUs"]

T = TypeVar("T")


class LazyHDUs(Generic[T]):
    """A sequence of HDU objects, made from layouts known or still to be scanned.

    Parameters
    ----------
    layouts : sequence of HDULayout
        The layouts known now (those of ``scanner`` when one is given).
    make : callable
        ``make(number, layout)`` returns the HDU object.
    scanner : HDUScanner, optional
        A scan to continue on demand; without one the layouts are all there is.
    """

    def __init__(
        self,
        layouts: Sequence[HDULayout],
        make: Callable[[int, HDULayout], T],
        scanner: HDUScanner | None = None,
    ) -> None:
        self._make = make
        self._scanner = scanner if scanner is not None and not scanner.done else None
        known = scanner.layouts if scanner is not None else layouts
        self._items = [make(i, layout) for i, layout in enumerate(known)]
        self._error: BaseException | None = None
        self._lock = threading.RLock()

    @property
    def complete(self) -> bool:
        """Whether every HDU is known (the scan is over)."""
        return self._scanner is None and self._error is None

    @property
    def found(self) -> int:
        """HDUs found so far (all of them once `complete`)."""
        return len(self._items)

    def at_least(self, count: int) -> bool:
        """Whether there are at least ``count`` HDUs, scanning only as far as needed.

        Raises
        ------
        FitsFormatError
            Where the scan fails on the way (again on every later call that needs it).
        """
        if count <= len(self._items):
            return True
        with self._lock:
            while len(self._items) < count:
                if self._error is not None:
                    raise self._error
                scanner = self._scanner
                if scanner is None:
                    return False
                try:
                    layout = scanner.step()
                except Exception as err:
                    self._error, self._scanner = err, None
                    raise
                if layout is not None:
                    self._items.append(self._make(len(self._items), layout))
                if scanner.done:
                    self._scanner = None
        return True

    def all(self) -> list[T]:
        """Every HDU (the scan finished first)."""
        if not self.complete:
            self.at_least(2**62)
        return list(self._items)

    def __getitem__(self, number: int) -> T:
        """HDU ``number`` (from 0), which `at_least` has found."""
        return self._items[number]

    def __iter__(self) -> Iterator[T]:
        number = 0
        while self.at_least(number + 1):
            yield self._items[number]
            number += 1
