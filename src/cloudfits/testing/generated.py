"""TESS-layout FFI cubes of any size whose bytes are a function of their offset.

A `GeneratedCube` is laid out like the cubes MAST serves (astrocut's ``CubeFactory``):
a primary header of 2 blocks, an image extension of numpy shape ``(rows, cols, frames,
2)`` float32 with a 1-block header, and a binary table of one row per frame with 55
columns (``TSTART``, ``TSTOP``, ...) behind a 4-block header. At the full TESS size,
``(2078, 2136, 1282, 2)``, that is 45,522,973,440 bytes, the size of a real cube.

Nothing is stored: `GeneratedCube.read` makes any byte range on demand (the headers are
real FITS cards, the image values repeat with a prime period, the table rows are built
from their number), and `GeneratedCube.pixels` and `GeneratedCube.column` give the
values astropy would read from those bytes, so every result can be checked exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

__all__ = ["TESS_SHAPE", "GeneratedCube"]

#: numpy shape of the image of a full-size TESS FFI cube (sector 22 has 1,282 FFIs).
TESS_SHAPE = (2078, 2136, 1282, 2)

BLOCK = 2880
_PERIOD = 1_048_573  # elements; prime, so no stride of the image is a multiple of it
_SHIFT = 7_919  # elements the pattern moves from one cube to the next
_CARDS_PER_BLOCK = BLOCK // 80
_ROW_BYTES = 458
_CADENCE = 1800.0 / 86400.0  # days between FFIs

# The FFI science-header keywords a cube's table has one column for (54 + FFI_FILE).
_FLOATS = [
    "TSTART",
    "TSTOP",
    "BARYCORR",
    "DEADC",
    "TIMEPIXR",
    "TIERRELA",
    "INT_TIME",
    "READTIME",
    "FRAMETIM",
    "TIMEDEL",
    "GAINA",
    "GAINB",
    "GAINC",
    "GAIND",
    "READNOIA",
    "READNOIB",
    "READNOIC",
    "READNOID",
    "MEANBLCA",
    "MEANBLCB",
    "MEANBLCC",
    "MEANBLCD",
    "CRVAL1",
    "CRVAL2",
    "CRPIX1",
    "CRPIX2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "RA_NOM",
    "DEC_NOM",
    "ROLL_NOM",
    "TELAPSE",
]
_INTS = [
    "NUM_FRM",
    "NREADOUT",
    "FXDOFF",
    "DQUALITY",
    "DATA_REL",
    "A_ORDER",
    "B_ORDER",
    "WCSAXES",
    "FFIINDEX",
]
_BOOLS = ["BACKAPP", "DEADAPP", "VIGNAPP"]
_STRINGS = (
    ("DATE-OBS", 24),
    ("DATE-END", 24),
    ("RADESYS", 4),
    ("CTYPE1", 12),
    ("CTYPE2", 12),
    ("CUNIT1", 3),
    ("CUNIT2", 3),
    ("TIMESYS", 3),
)
_FFI_FILE = "FFI_FILE"


def _pad_to(header: fits.Header, blocks: int, what: str) -> fits.Header:
    """Add COMMENT cards until ``header`` fills ``blocks`` blocks (its END card included)."""
    while len(header) + 1 <= _CARDS_PER_BLOCK * (blocks - 1):
        header.add_comment(f"{what}: keyword space reserved by the archive for later use")
    if len(header) + 1 > _CARDS_PER_BLOCK * blocks:
        raise ValueError(f"{what}: {len(header)} cards do not fit in {blocks} blocks")
    return header


def _table_dtype() -> np.dtype:
    fields: list[tuple[str, str]] = [(n, ">f8") for n in _FLOATS]
    fields += [(n, ">i4") for n in _INTS]
    fields += [(n, "S1") for n in _BOOLS]
    fields += [(n, f"S{w}") for n, w in _STRINGS]
    used = sum(np.dtype(t).itemsize for _, t in fields)
    fields.append((_FFI_FILE, f"S{_ROW_BYTES - used}"))
    return np.dtype(fields)


@functools.cache
def _primary_template(frames: int) -> bytes:
    """The primary header of every cube of ``frames`` frames, before its own cards."""
    primary = fits.Header()
    primary["SIMPLE"] = (True, "conforms to FITS standard")
    primary["BITPIX"] = (8, "array data type")
    primary["NAXIS"] = (0, "number of array dimensions")
    primary["EXTEND"] = True
    for key, value, comment in (
        ("NEXTEND", 2, "number of standard extensions"),
        ("SIMDATA", True, "file is based on simulated data"),
        ("ORIGIN", "cloudfits", "institution responsible for creating this file"),
        ("TELESCOP", "TESS", "telescope"),
        ("INSTRUME", "TESS Photometer", "detector type"),
        ("SECTOR", 0, ""),
        ("CAMERA", 0, ""),
        ("CCD", 0, ""),
        ("TSTART", 0.0, ""),
        ("TSTOP", 0.0, ""),
        ("DATE", "2025-01-01", "FFI cube creation date"),
        ("DATE-OBS", "2019-07-18T12:00:00.000Z", "TSTART as UTC calendar date"),
        ("DATE-END", "2019-08-14T22:00:00.000Z", "TSTOP as UTC calendar date"),
        ("FFIINDEX", 1000, "number of FFI cadence interval of first FFI"),
        ("CREATOR", "cloudfits.testing.generated", "program used"),
    ):
        primary[key] = (value, comment)
    text: str = _pad_to(primary, 2, "primary").tostring()
    return text.encode("ascii")


@functools.cache
def _extension_headers(shape: tuple[int, int, int, int]) -> tuple[bytes, bytes]:
    """The image and table headers of every cube of ``shape``."""
    image = fits.Header()
    image["XTENSION"] = ("IMAGE", "Image extension")
    image["BITPIX"] = (-32, "array data type")
    image["NAXIS"] = (4, "number of array dimensions")
    for axis, n in enumerate(reversed(shape), start=1):
        image[f"NAXIS{axis}"] = n
    image["PCOUNT"] = 0
    image["GCOUNT"] = 1
    image["EXTNAME"] = "CUBE"
    table = fits.Header()
    table["XTENSION"] = ("BINTABLE", "binary table extension")
    table["BITPIX"] = 8
    table["NAXIS"] = 2
    table["NAXIS1"] = (_ROW_BYTES, "length of dimension 1")
    table["NAXIS2"] = (shape[2], "length of dimension 2")
    table["PCOUNT"] = 0
    table["GCOUNT"] = 1
    dtype = _table_dtype()
    table["TFIELDS"] = len(dtype.names or ())
    for i, name in enumerate(dtype.names or (), start=1):
        table[f"TTYPE{i}"] = name
        table[f"TFORM{i}"] = "L" if name in _BOOLS else _tform(dtype[name])
        if name in ("TSTART", "TSTOP"):
            table[f"TUNIT{i}"] = "d"
    table["EXTNAME"] = "INFO"
    return (
        _pad_to(image, 1, "image").tostring().encode("ascii"),
        _pad_to(table, 4, "table").tostring().encode("ascii"),
    )


@functools.cache
def _base_table(frames: int) -> np.ndarray:
    """The columns every cube of ``frames`` frames has alike (its own are set later)."""
    rows = np.arange(frames)
    out = np.zeros(frames, dtype=_table_dtype())
    for name in _BOOLS:
        out[name] = np.where(rows % 2 == 0, b"T", b"F")
    numbers = rows.astype("S20")
    for name, width in _STRINGS:
        out[name] = np.char.add(name[:3].encode(), np.char.zfill(numbers, width - 3))
    out["TIMESYS"] = b"TDB"
    out[_FFI_FILE] = np.char.add(np.char.zfill(numbers, 6), b"-ffic.fits")
    return out


def _tform(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return "D"
    if dtype.kind == "i":
        return "J"
    return f"{dtype.itemsize}A"


@dataclass(frozen=True)
class GeneratedCube:
    """One generated cube: its headers, its byte layout and the values it holds.

    Parameters
    ----------
    number : int
        Which cube (0, 1, ...): it sets the sector, camera and CCD in the headers, the
        times in the table and where the image's value pattern starts.
    shape : tuple of int
        numpy shape of the image, ``(rows, cols, frames, 2)``.
    """

    number: int = 0
    shape: tuple[int, int, int, int] = TESS_SHAPE

    @property
    def frames(self) -> int:
        """Rows of the table: one per frame."""
        return self.shape[2]

    @property
    def sector(self) -> int:
        return 1 + self.number // 16

    @property
    def camera(self) -> int:
        return 1 + (self.number // 4) % 4

    @property
    def ccd(self) -> int:
        return 1 + self.number % 4

    @property
    def name(self) -> str:
        """The object name MAST gives such a cube."""
        return f"tess-s{self.sector:04d}-{self.camera}-{self.ccd}-cube.fits"

    # ------------------------------------------------------------------ headers

    @functools.cached_property
    def headers(self) -> tuple[bytes, bytes, bytes]:
        """The primary, image and table headers, each padded to whole blocks."""
        primary = bytearray(_primary_template(self.frames))
        for key, value, comment in self._varying_cards():
            card = fits.Card(key, value, comment).image.encode("ascii")
            at = primary.find(f"{key:<8}=".encode())
            primary[at : at + 80] = card
        return (bytes(primary), *_extension_headers(self.shape))

    def _varying_cards(self) -> list[tuple[str, float | int, str]]:
        return [
            ("SECTOR", self.sector, "Observing sector"),
            ("CAMERA", self.camera, "Camera number"),
            ("CCD", self.ccd, "CCD chip number"),
            ("TSTART", self._tstart0, "observation start time in TJD of first FFI"),
            ("TSTOP", self._tstart0 + self.frames * _CADENCE, "end time of last FFI"),
        ]

    @functools.cached_property
    def image_offset(self) -> int:
        """Byte offset of the image extension's header."""
        return len(self.headers[0])

    @functools.cached_property
    def data_offset(self) -> int:
        """Byte offset of the first image byte."""
        return self.image_offset + len(self.headers[1])

    @functools.cached_property
    def data_size(self) -> int:
        """Image bytes, without padding."""
        return 4 * int(np.prod(self.shape, dtype=np.int64))

    @functools.cached_property
    def table_offset(self) -> int:
        """Byte offset of the table's header."""
        return self.data_offset + -(-self.data_size // BLOCK) * BLOCK

    @functools.cached_property
    def table_data_offset(self) -> int:
        return self.table_offset + len(self.headers[2])

    @functools.cached_property
    def size(self) -> int:
        """The object's size in bytes."""
        table = _ROW_BYTES * self.frames
        return self.table_data_offset + -(-table // BLOCK) * BLOCK

    def layout(self) -> list[tuple[int, int, int, str]]:
        """``(header_offset, data_offset, data_size, header)`` of each HDU, as an index holds
        them (the header's cards up to and including END)."""
        starts = (0, self.image_offset, self.table_offset)
        sizes = (0, self.data_size, _ROW_BYTES * self.frames)
        out = []
        for start, size, raw in zip(starts, sizes, self.headers, strict=True):
            text = raw.decode("ascii")
            end = next(i for i in range(0, len(text), 80) if text[i : i + 80].rstrip() == "END")
            out.append((start, start + len(raw), size, text[: end + 80]))
        return out

    def header_runs(self) -> list[tuple[int, int]]:
        """``[start, end)`` of the header bytes: the least a scan must read."""
        return [(0, self.data_offset), (self.table_offset, self.table_data_offset)]

    # ------------------------------------------------------------------ values

    @property
    def _tstart0(self) -> float:
        return round(1325.3 + (self.sector - 1) * 27.4, 6)

    def pixels(self, key: tuple[slice | int, ...]) -> np.ndarray:
        """The image values at ``key`` (one int or slice per axis), as astropy reads them."""
        grids = np.ix_(*(np.arange(n)[k] for n, k in zip(self.shape, _as_slices(key), strict=True)))
        strides = np.cumprod((1, *self.shape[:0:-1]))[::-1]
        flat = sum(g.astype(np.int64) * int(s) for g, s in zip(grids, strides, strict=True))
        values: np.ndarray = _pattern()[(np.asarray(flat) + self._shift) % _PERIOD]
        squeeze = tuple(i for i, k in enumerate(key) if isinstance(k, int))
        return values.squeeze(axis=squeeze) if squeeze else values

    @property
    def _shift(self) -> int:
        return (self.number * _SHIFT) % _PERIOD

    @functools.cached_property
    def table(self) -> np.ndarray:
        """The table rows (big-endian structured array, as stored)."""
        out: np.ndarray = _base_table(self.frames).copy()
        rows = np.arange(self.frames)
        for k, name in enumerate(_FLOATS):
            out[name] = rows * (k + 1) * 0.25 + self.number
        tstart = self._tstart0 + rows * _CADENCE
        out["TSTART"] = tstart
        out["TSTOP"] = tstart + _CADENCE
        for k, name in enumerate(_INTS):
            out[name] = rows * (k + 3) + self.number
        out["DQUALITY"] = 0
        out["WCSAXES"] = 2
        for name, value in self.wcs_cards().items():
            out[name] = value
        out[_FFI_FILE] = np.char.add(f"tess{self.number:04d}".encode(), out[_FFI_FILE])
        return out

    def wcs_cards(self) -> dict[str, float | int | str]:
        """The celestial WCS of every frame (TAN-SIP without distortion, 21 arcsec pixels)."""
        rows, cols = self.shape[:2]
        return {
            "CTYPE1": "RA---TAN-SIP",
            "CTYPE2": "DEC--TAN-SIP",
            "A_ORDER": 2,
            "B_ORDER": 2,
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "RADESYS": "ICRS",
            "CRVAL1": 90.0 + 2.0 * self.number % 360,
            "CRVAL2": -66.0 + 0.1 * (self.number % 16),
            "CRPIX1": cols / 2 + 0.5,
            "CRPIX2": rows / 2 + 0.5,
            "CD1_1": -21.0 / 3600,
            "CD1_2": 0.0,
            "CD2_1": 0.0,
            "CD2_2": 21.0 / 3600,
        }

    def column(self, name: str) -> np.ndarray:
        """One table column's values (native byte order)."""
        values: np.ndarray = self.table[name]
        if name in _BOOLS:
            values = values == b"T"
        elif values.dtype.kind == "S":
            values = np.char.decode(values, "ascii")
        else:
            values = values.astype(values.dtype.newbyteorder("="))
        return values

    # ------------------------------------------------------------------ bytes

    @functools.cached_property
    def _table_data(self) -> bytes:
        """The table's rows, padded: the object's last bytes (built on first use, so a
        read of headers only never builds them)."""
        raw = self.table.tobytes()
        return raw + b"\0" * (-len(raw) % BLOCK)

    def chunks(self, start: int, end: int, chunk: int = 1 << 20) -> list[memoryview | bytes]:
        """Bytes ``[start, end)`` of the object, as a list of pieces (mostly views)."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside [0, {self.size})")
        pieces: list[memoryview | bytes] = []
        primary, image, table = self.headers
        for region_start, region_end in (
            (0, self.image_offset),
            (self.image_offset, self.data_offset),
            (self.data_offset, self.table_offset),
            (self.table_offset, self.table_data_offset),
            (self.table_data_offset, self.size),
        ):
            a, b = max(start, region_start), min(end, region_end)
            if a >= b:
                continue
            a, b = a - region_start, b - region_start
            if region_start == self.data_offset:
                pieces.extend(self._image_bytes(a, b, chunk))
            elif region_start == self.table_data_offset:
                pieces.append(memoryview(self._table_data)[a:b])
            else:
                header = {0: primary, self.image_offset: image, self.table_offset: table}
                pieces.append(header[region_start][a:b])
        return pieces

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object."""
        return b"".join(self.chunks(start, end))

    def _image_bytes(self, a: int, b: int, chunk: int) -> list[memoryview | bytes]:
        pieces: list[memoryview | bytes] = []
        if a < self.data_size:
            ring, period = _ring(), 4 * _PERIOD
            pos = a
            stop = min(b, self.data_size)
            while pos < stop:
                at = (pos + 4 * self._shift) % period
                n = min(stop - pos, chunk, period)
                pieces.append(ring[at : at + n])
                pos += n
        if b > self.data_size:
            pieces.append(b"\0" * (b - max(a, self.data_size)))
        return pieces


def _as_slices(key: tuple[slice | int, ...]) -> tuple[slice, ...]:
    return tuple(slice(k, k + 1) if isinstance(k, int) else k for k in key)


@functools.cache
def _pattern() -> np.ndarray:
    """One period of the image values: distinct-looking float32 values, exactly representable."""
    j = np.arange(_PERIOD, dtype=np.uint64)
    mixed = (j * np.uint64(2_654_435_761)) & np.uint64(0xFFFFFF)
    values: np.ndarray = mixed.astype(np.float32) / 256
    return values


@functools.cache
def _ring() -> memoryview:
    """The pattern as stored (big-endian), twice over, so any period-long slice is one view."""
    raw = _pattern().astype(">f4").tobytes()
    return memoryview(raw + raw)
