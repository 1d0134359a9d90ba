"""Tests of the index format (version 1): building, serializing, storing, validating."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from cloudfits import (
    AccessDeniedError,
    FileEntry,
    FitsIndex,
    IndexFormatError,
    ReadStats,
    build_index,
    download_index,
    load_index,
)
from cloudfits.fits.scan import BLOCK, HDULayout, padded
from cloudfits.providers.file import FileConfig, FileProvider, file_tag
from cloudfits.testing.seaweedfs import S3Server

from ..conftest import CORPUS, CORPUS_BUCKET, CORPUS_DIR, CORPUS_PREFIX

TOP_LEVEL_KEYS = ["format", "version", "generator", "created", "data_uri", "files"]
HDU_KEYS = ["header_offset", "data_offset", "data_size", "header"]
END_CARD = "END" + " " * 77


def astropy_offsets(path: Path) -> list[tuple[int, int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(path, disable_image_compression=True) as hdul:
            return [(h._header_offset, h._data_offset, h.size) for h in hdul]


@pytest.fixture(scope="module")
def corpus_index() -> FitsIndex:
    return build_index(CORPUS_DIR)


# -- building from a local directory ---------------------------------------------------


def test_local_index_lists_every_corpus_file(corpus_index: FitsIndex) -> None:
    assert corpus_index.data_uri == os.path.abspath(CORPUS_DIR)
    assert corpus_index.paths == sorted(CORPUS)
    assert len(corpus_index) == len(CORPUS)
    assert "invalid/group_invalid.fits" in corpus_index
    for entry in corpus_index:
        path = CORPUS_DIR / entry.path
        assert not os.path.isabs(entry.path)
        assert entry.size == path.stat().st_size
        assert entry.etag == file_tag(path.stat())  # size and mtime_ns
        assert entry.last_modified is not None
        dt.datetime.fromisoformat(entry.last_modified)
        data = path.read_bytes()
        assert [(h.header_offset, h.data_offset, h.data_size) for h in entry.hdus] == (
            astropy_offsets(path)
        )
        for hdu in entry.hdus:
            raw = data[hdu.header_offset : hdu.header_offset + len(hdu.header)]
            assert raw == hdu.header.encode("ascii")
            assert hdu.header.endswith(END_CARD)


def test_index_of_one_local_file(tmp_path: Path) -> None:
    path = tmp_path / "one.fits"
    fits.PrimaryHDU(np.zeros((3, 3), ">i2")).writeto(path)
    index = build_index(path)
    assert index.data_uri == str(tmp_path)
    assert index.paths == ["one.fits"]
    assert index.entry("one.fits").hdus[0].data_size == 18


def test_to_bytes_is_deterministic(corpus_index: FitsIndex) -> None:
    data = corpus_index.to_bytes()
    assert data == corpus_index.to_bytes()
    assert data.isascii()
    assert data.endswith(b"\n")
    # Parsing and writing again gives the very same document.
    assert FitsIndex.from_bytes(data).to_bytes() == data
    compressed = corpus_index.to_bytes(compress=True)
    assert compressed == corpus_index.to_bytes(compress=True)
    assert compressed[:2] == b"\x1f\x8b"
    assert gzip.decompress(compressed) == data


def test_key_order(corpus_index: FitsIndex) -> None:
    document = json.loads(corpus_index.to_bytes())
    assert list(document) == TOP_LEVEL_KEYS
    assert document["format"] == "cloudfits-index"
    assert document["version"] == 1
    assert document["generator"].startswith("cloudfits ")
    dt.datetime.fromisoformat(document["created"])
    for entry in document["files"]:
        assert list(entry) == ["path", "size", "etag", "last_modified", "hdus"]
        for hdu in entry["hdus"]:
            assert list(hdu) == HDU_KEYS


def test_gzip_round_trip(corpus_index: FitsIndex) -> None:
    again = FitsIndex.from_bytes(corpus_index.to_bytes(compress=True))
    assert again.to_dict() == corpus_index.to_dict()
    assert [e.hdus for e in again] == [e.hdus for e in corpus_index]


def test_json_round_trip(corpus_index: FitsIndex) -> None:
    again = FitsIndex.from_bytes(corpus_index.to_bytes())
    assert again.to_dict() == corpus_index.to_dict()
    from_dict = FitsIndex.from_dict(json.loads(corpus_index.to_bytes()))
    assert from_dict.to_dict() == corpus_index.to_dict()
    assert [e.hdus for e in from_dict] == [e.hdus for e in corpus_index]


# -- storing and loading ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["idx.json", "idx.json.gz", "sub/dir/idx.json"])
@pytest.mark.parametrize("as_uri", [False, True])
def test_save_and_load_local(
    corpus_index: FitsIndex, tmp_path: Path, name: str, as_uri: bool
) -> None:
    target = tmp_path / name
    uri = f"file://{target}" if as_uri else str(target)
    corpus_index.save(uri)
    stored = target.read_bytes()
    if name.endswith(".gz"):
        assert stored[:2] == b"\x1f\x8b"
        assert gzip.decompress(stored) == corpus_index.to_bytes()
    else:
        assert stored == corpus_index.to_bytes()
    loaded = load_index(uri)
    assert loaded.to_dict() == corpus_index.to_dict()
    assert loaded.uri == uri


def test_load_index_names_the_broken_file(tmp_path: Path) -> None:
    target = tmp_path / "broken.json"
    target.write_bytes(b"{not json")
    with pytest.raises(IndexFormatError, match=r"broken\.json"):
        load_index(target)


@pytest.mark.s3
def test_save_and_load_s3(corpus_index: FitsIndex, s3_server: S3Server) -> None:
    s3_server.create_bucket("index-roundtrip")
    client = s3_server.client()
    for key in ("idx.json", "idx.json.gz"):
        uri = f"s3://index-roundtrip/{key}"
        corpus_index.save(uri)
        stored = client.get_object(Bucket="index-roundtrip", Key=key)["Body"].read()
        assert stored == corpus_index.to_bytes(compress=key.endswith(".gz"))
        loaded = load_index(uri)
        assert loaded.to_dict() == corpus_index.to_dict()
        assert loaded.uri == uri


@pytest.mark.s3
def test_download_index_from_bucket(corpus_index: FitsIndex, s3_server: S3Server) -> None:
    s3_server.create_bucket("index-download")
    corpus_index.save("s3://index-download/cloudfits-index.json")
    loaded = download_index("index-download")
    assert loaded.to_dict() == corpus_index.to_dict()


@pytest.mark.s3
def test_remote_index_matches_local(
    corpus_index: FitsIndex, corpus_uri: str, s3_server: S3Server
) -> None:
    stats = ReadStats()
    remote = build_index(corpus_uri + "/", stats=stats)
    assert remote.data_uri == corpus_uri
    assert remote.paths == corpus_index.paths
    client = s3_server.client()
    for entry in remote:
        local = corpus_index.entry(entry.path)
        assert entry.hdus == local.hdus
        head = client.head_object(Bucket=CORPUS_BUCKET, Key=f"{CORPUS_PREFIX}/{entry.path}")
        assert entry.size == head["ContentLength"] == local.size
        assert entry.etag is not None
        assert entry.etag == head["ETag"].strip('"')
        assert entry.last_modified is not None
    # Headers only: at most one request per HDU, never the whole corpus.
    assert stats.requests <= sum(len(e.hdus) for e in remote)
    assert stats.bytes < sum(e.size for e in remote)
    # The remote index is a valid document that reloads to the same thing.
    assert FitsIndex.from_bytes(remote.to_bytes()).to_dict() == remote.to_dict()


# -- rejection of bad documents --------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with one two-HDU file, and a valid FITS file outside it."""
    root = tmp_path_factory.mktemp("index-data")
    directory = root / "data"
    directory.mkdir()
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(np.arange(12, dtype=">i2").reshape(3, 4)),
            fits.ImageHDU(np.arange(10, dtype=">f8"), name="EXT"),
        ]
    )
    hdul.writeto(directory / "a.fits")
    hdul.writeto(root / "outside.fits")
    return directory


@pytest.fixture
def document(data_dir: Path) -> dict[str, Any]:
    return build_index(data_dir).to_dict()


def _hdu(doc: dict[str, Any], number: int) -> dict[str, Any]:
    hdu: dict[str, Any] = doc["files"][0]["hdus"][number]
    return hdu


def _set_header(doc: dict[str, Any], number: int, text: str) -> None:
    _hdu(doc, number)["header"] = text


Mutation = Callable[[dict[str, Any]], None]


def _mutations() -> list[Any]:
    def top(key: str, value: Any) -> Mutation:
        return lambda d: d.__setitem__(key, value)

    def drop_top(key: str) -> Mutation:
        return lambda d: d.pop(key)

    def file(key: str, value: Any) -> Mutation:
        return lambda d: d["files"][0].__setitem__(key, value)

    def drop_file(key: str) -> Mutation:
        return lambda d: d["files"][0].pop(key)

    def hdu(number: int, key: str, value: Any) -> Mutation:
        return lambda d: _hdu(d, number).__setitem__(key, value)

    def drop_hdu(key: str) -> Mutation:
        return lambda d: _hdu(d, 1).pop(key)

    def shift(number: int, key: str, delta: int) -> Mutation:
        return lambda d: _hdu(d, number).__setitem__(key, _hdu(d, number)[key] + delta)

    def duplicate(d: dict[str, Any]) -> None:
        d["files"].append(copy.deepcopy(d["files"][0]))

    def overlap(d: dict[str, Any]) -> None:
        # HDU 1 claims to start inside HDU 0's data.
        _hdu(d, 1)["header_offset"] -= BLOCK
        _hdu(d, 1)["data_offset"] -= BLOCK

    def gap(d: dict[str, Any]) -> None:
        _hdu(d, 1)["header_offset"] += BLOCK
        _hdu(d, 1)["data_offset"] += BLOCK
        d["files"][0]["size"] += BLOCK

    def swap(d: dict[str, Any]) -> None:
        hdus = d["files"][0]["hdus"]
        hdus[0], hdus[1] = hdus[1], hdus[0]

    def past_size(d: dict[str, Any]) -> None:
        last = _hdu(d, 1)
        d["files"][0]["size"] = last["data_offset"] + last["data_size"] - 1

    def no_end(d: dict[str, Any]) -> None:
        header = _hdu(d, 1)["header"]
        _set_header(d, 1, header[:-80] + " " * 80)

    def short_card(d: dict[str, Any]) -> None:
        _set_header(d, 1, _hdu(d, 1)["header"][1:])

    def longer_header(d: dict[str, Any]) -> None:
        # One more card: still ends with END, but no longer fits the data offset.
        header = _hdu(d, 0)["header"]
        extra = ("HISTORY " + "x" * 72) * (BLOCK // 80)
        _set_header(d, 0, header[:-80] + extra + header[-80:])

    def non_latin1(d: dict[str, Any]) -> None:
        header = _hdu(d, 1)["header"]
        _set_header(d, 1, header[:100] + "\u20ac" + header[101:])  # not one byte

    inconsistent = "inconsistent layout"
    return [
        pytest.param(top("format", "fits-index"), "not a cloudfits-index", id="format"),
        pytest.param(drop_top("format"), "not a cloudfits-index", id="no-format"),
        pytest.param(top("version", 2), "upgrade", id="version-2"),
        pytest.param(top("version", "1"), "version '1'", id="version-str"),
        pytest.param(drop_top("version"), "version", id="no-version"),
        pytest.param(drop_top("data_uri"), "missing 'data_uri'", id="no-data_uri"),
        pytest.param(drop_top("files"), "missing 'files'", id="no-files"),
        pytest.param(drop_top("generator"), "missing 'generator'", id="no-generator"),
        pytest.param(drop_top("created"), "missing 'created'", id="no-created"),
        pytest.param(drop_file("path"), "missing 'path'", id="no-path"),
        pytest.param(drop_file("size"), "missing 'size'", id="no-size"),
        pytest.param(drop_file("hdus"), "missing 'hdus'", id="no-hdus"),
        pytest.param(drop_hdu("header_offset"), "missing 'header_offset'", id="no-hoff"),
        pytest.param(drop_hdu("data_offset"), "missing 'data_offset'", id="no-doff"),
        pytest.param(drop_hdu("data_size"), "missing 'data_size'", id="no-dsize"),
        pytest.param(drop_hdu("header"), "missing 'header'", id="no-header"),
        pytest.param(top("files", {}), "'files' must be list", id="files-dict"),
        pytest.param(top("data_uri", None), "'data_uri' must be str", id="data_uri-none"),
        pytest.param(file("size", True), "'size' must be int", id="size-bool"),
        pytest.param(file("size", "8640"), "'size' must be int", id="size-str"),
        pytest.param(file("size", -1), "'size' must not be negative", id="size-negative"),
        pytest.param(file("path", 3), "'path' must be str", id="path-int"),
        pytest.param(file("etag", 5), "'etag' must be str", id="etag-int"),
        pytest.param(hdu(0, "header_offset", False), "'header_offset' must be int", id="bool"),
        pytest.param(hdu(1, "data_offset", "8640"), "'data_offset' must be int", id="str-off"),
        pytest.param(hdu(1, "data_size", 80.0), "'data_size' must be int", id="float-size"),
        pytest.param(hdu(1, "header", 5), "'header' must be str", id="header-int"),
        pytest.param(file("path", "../a.fits"), r"\.\.", id="dotdot"),
        pytest.param(file("path", "x/../../a.fits"), r"\.\.", id="dotdot-inner"),
        pytest.param(file("path", "/etc/a.fits"), "relative", id="absolute"),
        pytest.param(file("path", ""), "relative", id="empty-path"),
        pytest.param(file("path", "..\\a.fits"), "relative", id="backslash"),
        pytest.param(duplicate, "listed twice", id="duplicate"),
        pytest.param(overlap, inconsistent, id="overlap"),
        pytest.param(gap, inconsistent, id="gap"),
        pytest.param(swap, inconsistent, id="swapped"),
        pytest.param(shift(1, "data_offset", BLOCK), inconsistent, id="data-offset"),
        pytest.param(shift(1, "data_offset", 80), inconsistent, id="data-unaligned"),
        pytest.param(hdu(1, "data_size", -1), "must not be negative", id="data-size-negative"),
        pytest.param(past_size, inconsistent, id="past-size"),
        pytest.param(short_card, "80-character cards", id="partial-card"),
        pytest.param(longer_header, inconsistent, id="header-too-long"),
        pytest.param(
            no_end,
            "END",
            id="no-end",
        ),
        pytest.param(
            non_latin1,
            "Latin-1",
            id="non-latin1",
        ),
    ]


@pytest.mark.parametrize(("mutate", "message"), _mutations())
def test_rejects_bad_document(document: dict[str, Any], mutate: Mutation, message: str) -> None:
    FitsIndex.from_dict(copy.deepcopy(document))  # the unmodified document is fine
    mutate(document)
    with pytest.raises(IndexFormatError, match=message):
        FitsIndex.from_dict(document, source="bad-index.json")
    # The same through bytes, with the source named.
    data = json.dumps(document).encode()
    with pytest.raises(IndexFormatError, match=message) as info:
        FitsIndex.from_bytes(data, source="bad-index.json")
    assert "bad-index.json" in str(info.value)


@pytest.mark.parametrize("version", [True, 1.0])
def test_rejects_non_int_version(document: dict[str, Any], version: Any) -> None:
    document["version"] = version
    with pytest.raises(IndexFormatError, match="version"):
        FitsIndex.from_dict(document)


@pytest.mark.parametrize("char", ["\n", "\0", "\x7f", "\t", "\xe9"])
def test_keeps_any_byte_astropy_reads_in_a_header(document: dict[str, Any], char: str) -> None:
    """A header is the file's bytes as Latin-1 text: astropy reads any byte in a card."""
    header = _hdu(document, 1)["header"]
    _set_header(document, 1, header[:100] + char + header[101:])
    index = FitsIndex.from_dict(document)
    again = FitsIndex.from_bytes(index.to_bytes())  # written as ASCII JSON, \u escapes
    assert _hdu(again.to_dict(), 1)["header"][100] == char


@pytest.mark.parametrize("char", ["\u0100", "\u20ac", "\U0001f600"])
def test_rejects_characters_that_are_not_bytes(document: dict[str, Any], char: str) -> None:
    header = _hdu(document, 1)["header"]
    _set_header(document, 1, header[:100] + char + header[101:])
    with pytest.raises(IndexFormatError, match="Latin-1"):
        FitsIndex.from_dict(document)


@pytest.mark.parametrize("data_size", [1, 80, 2880])
def test_data_size_contradicting_header_is_refused_before_reading(
    document: dict[str, Any], data_size: int
) -> None:
    """Loading stays cheap (no header is parsed); the first read checks the layout."""
    hdu = _hdu(document, 0)
    assert hdu["data_size"] == 24  # 3 x 4 int16
    hdu["data_size"] = data_size  # still inside the object, offsets unchanged
    index = FitsIndex.from_dict(document)
    remote = index.open(index.paths[0])
    before = remote.stats.requests
    with pytest.raises(IndexFormatError, match=f"index says {data_size} data bytes"):
        remote[0].section[...]
    assert remote.stats.requests == before


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe{",
        b"[1, 2, 3]",
        b'"cloudfits-index"',
        b"null",
    ],
)
def test_rejects_non_documents(data: bytes) -> None:
    with pytest.raises(IndexFormatError):
        FitsIndex.from_bytes(data)


def test_rejects_not_json_with_message() -> None:
    with pytest.raises(IndexFormatError, match="not JSON"):
        FitsIndex.from_bytes(b"{'format': 'cloudfits-index'}")


def test_rejects_broken_gzip(document: dict[str, Any]) -> None:
    good = gzip.compress(json.dumps(document).encode())
    assert FitsIndex.from_bytes(good).to_dict() == document
    for broken in (good[: len(good) // 2], good[:10], good[:-4] + b"\0\0\0\0"):
        with pytest.raises(IndexFormatError, match="gzip"):
            FitsIndex.from_bytes(broken)
    with pytest.raises(IndexFormatError, match="not JSON"):
        FitsIndex.from_bytes(gzip.compress(b"\x00garbage"))


# -- the data directory cannot be escaped ----------------------------------------------


def test_crafted_path_is_rejected_at_load(
    data_dir: Path, document: dict[str, Any], tmp_path: Path
) -> None:
    assert (data_dir.parent / "outside.fits").is_file()
    document["files"][0]["path"] = "../outside.fits"
    with pytest.raises(IndexFormatError, match=r"\.\."):
        FitsIndex.from_dict(document)
    saved = tmp_path / "crafted.json"
    saved.write_text(json.dumps(document))
    with pytest.raises(IndexFormatError, match=r"\.\."):
        load_index(saved)


def test_open_reads_inside_the_data_dir(data_dir: Path) -> None:
    index = build_index(data_dir)
    with fits.open(data_dir / "a.fits") as hdul:
        expected = hdul[0].data.copy()
    f = index.open("a.fits")
    np.testing.assert_array_equal(f[0].section[...], expected)


def _entry_like(index: FitsIndex, path: str) -> FileEntry:
    entry = index.entry("a.fits")
    return FileEntry(path, entry.size, entry.hdus)


def test_open_refuses_a_path_outside_even_unvalidated(data_dir: Path) -> None:
    """An index built in code (no validation) still cannot read outside data_uri."""
    valid = build_index(data_dir)
    crafted = FitsIndex(valid.data_uri, [_entry_like(valid, "../outside.fits")])
    f = crafted.open("../outside.fits")
    with pytest.raises(AccessDeniedError):
        f[0].section[0, 0]


def test_open_refuses_a_symlink_out_of_the_data_dir(tmp_path: Path, data_dir: Path) -> None:
    directory = tmp_path / "linked"
    directory.mkdir()
    (directory / "real.fits").write_bytes((data_dir / "a.fits").read_bytes())
    (directory / "escape.fits").symlink_to(data_dir.parent / "outside.fits")
    valid = build_index(data_dir)
    index = FitsIndex.from_dict(
        FitsIndex(
            str(directory),
            [_entry_like(valid, "real.fits"), _entry_like(valid, "escape.fits")],
        ).to_dict()
    )
    assert index.open("real.fits")[0].section[0, 0] == 0
    with pytest.raises(AccessDeniedError):
        index.open("escape.fits")[0].section[0, 0]


@pytest.fixture
def rooted(tmp_path: Path) -> tuple[FileProvider, Path]:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "inside.fits").write_bytes(b"inside")
    (tmp_path / "x").write_bytes(b"secret")
    (root / "out-link").symlink_to(tmp_path / "x")
    (root / "in-link").symlink_to(root / "inside.fits")
    (root / "sub" / "dir-link").symlink_to(tmp_path, target_is_directory=True)
    return FileProvider(FileConfig(root=str(root))), tmp_path


def test_file_provider_root_allows_inside(rooted: tuple[FileProvider, Path]) -> None:
    provider, _ = rooted
    assert provider.get_range("inside.fits", 0, 6) == b"inside"
    assert provider.get_range("in-link", 2, 6) == b"side"
    assert provider.get_range("sub/../inside.fits", 0, 2) == b"in"
    assert provider.head("inside.fits").size == 6


@pytest.mark.parametrize("path", ["../x", "sub/../../x", "out-link", "sub/dir-link/x", "ABSOLUTE"])
def test_file_provider_root_refuses_outside(rooted: tuple[FileProvider, Path], path: str) -> None:
    provider, tmp_path = rooted
    if path == "ABSOLUTE":
        path = str(tmp_path / "x")
    with pytest.raises(AccessDeniedError):
        provider.get_range(path, 0, 6)
    with pytest.raises(AccessDeniedError):
        provider.head(path)


def test_file_provider_root_refuses_writing_outside(
    rooted: tuple[FileProvider, Path],
) -> None:
    provider, tmp_path = rooted
    with pytest.raises(AccessDeniedError):
        provider.put_index("../written.json", b"{}")
    assert not (tmp_path / "written.json").exists()
    with pytest.raises(AccessDeniedError):
        provider.put_index("out-link", b"{}")
    assert (tmp_path / "x").read_bytes() == b"secret"


def test_layout_helpers_agree_with_index(corpus_index: FitsIndex) -> None:
    """Every HDU in the corpus index tiles its file exactly as the format requires."""
    for entry in corpus_index:
        offset = 0
        for hdu in entry.hdus:
            assert isinstance(hdu, HDULayout)
            assert hdu.header_offset == offset
            assert hdu.data_offset == hdu.header_offset + padded(len(hdu.header))
            offset = hdu.data_offset + padded(hdu.data_size)
        assert offset == padded(entry.size)
