"""Seek points of whole-file gzip and random reads through them, against the bytes themselves."""

from __future__ import annotations

import copy
import gzip
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import indexed_gzip
import numpy as np
import pytest

from cloudfits import FetchOptions, FitsFormatError, IndexFormatError, ReadStats
from cloudfits.fetch.reader import ObjectReader
from cloudfits.index.json_schema import index_schema
from cloudfits.providers.location import ObjectLocation
from cloudfits.remote.gzipped import GzippedReader, compression_of
from cloudfits.remote.seekpoints import (
    MAX_SEEK_POINTS,
    MAX_WINDOW_TEXT,
    MIN_SPACING,
    WINDOW_SIZE,
    GzipSeekPoints,
    spacing_for,
)

SPACING = 64 * 1024


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """About 1.2 MB of partly compressible bytes, gzip-compressed into a file."""
    rng = np.random.default_rng(3)
    noise = rng.normal(100, 3, 300_000).astype(">f4").tobytes()
    text = b"".join(b"row %07d of a text part\n" % i for i in range(12_000))
    raw = noise[: len(noise) // 2] + text + noise[len(noise) // 2 :]
    path = tmp_path_factory.mktemp("gzip") / "stream.gz"
    path.write_bytes(gzip.compress(raw, compresslevel=6, mtime=0))
    return raw, path


def _points(path: Path, spacing: int = SPACING) -> GzipSeekPoints:
    with indexed_gzip.IndexedGzipFile(str(path), spacing=spacing, window_size=WINDOW_SIZE) as f:
        f.build_full_index()
        out = io.BytesIO()
        f.export_index(fileobj=out)
    return GzipSeekPoints.from_zran(out.getvalue(), where=str(path))


def _reader(path: Path, points: GzipSeekPoints, stats: ReadStats) -> GzippedReader:
    location = ObjectLocation.from_uri(str(path))
    plain = ObjectReader(location.provider(), location.path, location.uri, [stats])
    return GzippedReader(plain, points, path.stat().st_size)


def test_points_follow_the_stream_and_survive_the_index_document(
    stream: tuple[bytes, Path],
) -> None:
    raw, path = stream
    points = _points(path)
    assert points.uncompressed_size == len(raw)
    assert points.points[0].uncompressed == 0
    assert not points.points[0].window
    starts = [p.uncompressed for p in points.points]
    gaps = np.diff(starts)
    # At the first deflate block boundary past each spacing (blocks are ~100 KB here).
    assert len(points) >= 10
    assert SPACING <= gaps.min() <= gaps.max() < 4 * SPACING
    assert starts[-1] < len(raw)
    for k, point in enumerate(points.points[1:], start=1):
        window = points.window(k, where="test")
        assert window == raw[point.uncompressed - WINDOW_SIZE : point.uncompressed]
    document = json.loads(json.dumps(points.to_dict()))
    assert GzipSeekPoints.from_dict(document, size=path.stat().st_size, where="x") == points


def test_random_reads_are_exact_and_fetch_one_stretch_at_most(
    stream: tuple[bytes, Path],
) -> None:
    raw, path = stream
    points = _points(path)
    stats = ReadStats()
    reader = _reader(path, points, stats)
    compressed = path.stat().st_size
    stretch = max(
        b.compressed - a.compressed for a, b in zip(points.points, points.points[1:], strict=False)
    )
    rng = np.random.default_rng(5)
    for _ in range(40):
        start = int(rng.integers(0, len(raw)))
        end = min(len(raw), start + int(rng.integers(1, 4000)))
        stats.reset()
        assert reader.read(start, end) == raw[start:end]
        # Within one stretch: its bytes up to the wanted ones, at most one more request.
        if points.segment_of(start) == points.segment_of(end - 1):
            assert stats.bytes <= stretch + 64 * 1024
            assert stats.requests <= 2
    stats.reset()
    assert reader.read(0, len(raw)) == raw
    assert stats.bytes == compressed  # every stretch once, nothing twice


def test_runs_and_ranges_as_the_range_engine_gives_them(stream: tuple[bytes, Path]) -> None:
    raw, path = stream
    reader = _reader(path, _points(path), ReadStats())
    data = np.frombuffer(raw, dtype=np.uint8)
    offsets = np.arange(20) * 50_000 + 123
    got = reader.read_runs(7, offsets, 80, FetchOptions())
    assert got.tobytes() == b"".join(raw[7 + o : 7 + o + 80] for o in offsets)
    starts = np.array([len(raw) - 10, 5, 400_000, 4, 100])
    ends = np.array([len(raw), 900_000, 400_010, 5, 100])
    pieces = reader.read_ranges(0, starts, ends, FetchOptions(max_gap=0))
    for a, b, piece in zip(starts, ends, pieces, strict=True):
        assert np.array_equal(piece, data[a:b])
    with pytest.raises(FitsFormatError, match="outside"):
        reader.read(len(raw) - 1, len(raw) + 1)


def test_a_replaced_object_is_an_error_not_other_bytes(
    stream: tuple[bytes, Path], tmp_path: Path
) -> None:
    raw, path = stream
    points = _points(path)
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(raw[::-1], mtime=0))
    reader = _reader(other, points, ReadStats())
    with pytest.raises((FitsFormatError, IndexFormatError)):
        assert reader.read(700_000, 700_100) != raw[700_000:700_100]


def test_many_points_are_thinned_and_large_objects_spaced_out(stream: tuple[bytes, Path]) -> None:
    assert spacing_for(10**6) == 1 << 20
    assert spacing_for(4 << 30) * (MAX_SEEK_POINTS - 1) >= 4 << 30
    with pytest.raises(ValueError, match="at least"):
        spacing_for(10**6, 1000)
    _, path = stream
    assert len(_points(path, MIN_SPACING)) <= MAX_SEEK_POINTS
    # An exported index of more points than that keeps every other one, as often as needed.
    count = 2 * MAX_SEEK_POINTS + 500
    header = struct.pack("<5sBBQQIII", b"GZIDX", 1, 0, 10**9, 10**10, 1 << 20, WINDOW_SIZE, count)
    rows = b"".join(
        struct.pack("<QQBB", 10 + 100 * i, 1000 * i, 0, 1 if i else 0) for i in range(count)
    )
    exported = header + rows + bytes(WINDOW_SIZE) * (count - 1)
    thinned = GzipSeekPoints.from_zran(exported, where="x")
    assert len(thinned) == -(-count // 4) <= MAX_SEEK_POINTS
    assert [p.uncompressed for p in thinned.points[:3]] == [0, 4000, 8000]
    assert thinned.spacing == 4 << 20
    assert thinned.window(1, where="x") == bytes(WINDOW_SIZE)


def test_the_schema_bounds_are_the_code_bounds() -> None:
    schema = index_schema()["$defs"]
    assert schema["gzip"]["then"]["properties"]["points"]["maxItems"] == MAX_SEEK_POINTS
    assert schema["seek_point"]["properties"]["window"]["maxLength"] == MAX_WINDOW_TEXT
    assert schema["gzip"]["then"]["properties"]["window_size"]["const"] == WINDOW_SIZE
    assert schema["gzip"]["then"]["properties"]["spacing"]["minimum"] == MIN_SPACING


def _tampered(document: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    change(copied)
    return copied


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "version 2 is not supported"),
        (lambda d: d.update(window_size=1024), "window_size"),
        (lambda d: d.update(spacing=10), "spacing"),
        (lambda d: d.update(uncompressed_size=-1), "uncompressed_size"),
        (lambda d: d.update(points=[]), "1 to 1024 points"),
        (lambda d: d.update(points=d["points"] * 600), "1 to 1024 points"),
        (lambda d: d["points"][0].update(window="AAAA"), "first point has no window"),
        (lambda d: d["points"][0].update(compressed=3), "point 0"),
        (lambda d: d["points"][1].update(bits=8), "'bits'"),
        (lambda d: d["points"][1].update(window="not base64!"), "not base64"),
        (lambda d: d["points"][1].update(window="A" * 50_000), "at most"),
        (lambda d: d["points"][1].pop("window"), "'window'"),
        (lambda d: d["points"][2].update(uncompressed=1), "must follow point 1"),
        (lambda d: d["points"][2].update(compressed=10**9), "must follow point 1"),
        (lambda d: d["points"][1].update(compressed="12"), "'compressed'"),
    ],
)
def test_seek_points_are_checked_as_untrusted_input(
    stream: tuple[bytes, Path], change: Any, message: str
) -> None:
    _, path = stream
    document = _points(path).to_dict()
    with pytest.raises(IndexFormatError, match=message):
        GzipSeekPoints.from_dict(_tampered(document, change), size=path.stat().st_size, where="x")


def test_a_broken_window_is_an_index_error_when_used(stream: tuple[bytes, Path]) -> None:
    _, path = stream
    document = _points(path).to_dict()
    document["points"][1]["window"] = "eJwDAAAAAAE="  # zlib of nothing: too short
    points = GzipSeekPoints.from_dict(document, size=path.stat().st_size, where="x")
    with pytest.raises(IndexFormatError, match="must hold 32768 bytes"):
        points.window(1, where="x")
    assert zlib.decompress(points.points[1].window) == b""


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"BZh91AY&SY", "bzip2"),
        (b"\x1f\x9d\x90SIMPLE", "compress"),
        (b"PK\x03\x04\x14\x00", "zip"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
    ],
)
def test_other_compressions_are_not_supported_by_name(head: bytes, what: str) -> None:
    with pytest.raises(FitsFormatError, match=f"x.fits: not supported: {what}"):
        compression_of(head, name="x.fits")


def test_gzip_and_fits_are_told_by_their_first_bytes() -> None:
    assert compression_of(b"\x1f\x8b\x08\x00", name="a.fits") == "gzip"
    assert compression_of(b"SIMPLE  =                    T", name="a.gz") is None
    assert compression_of(b"", name="empty") is None
