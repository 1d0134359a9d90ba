"""The plain-Python check of an index document never passes what the schema refuses."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudfits import IndexFormatError
from cloudfits.index.json_schema import conforms_plainly, index_schema, validate_index_document

HEADER = "SIMPLE  =                    T".ljust(80) + "END".ljust(80)


def _document() -> dict[str, Any]:
    hdu = {"header_offset": 0, "data_offset": 2880, "data_size": 0, "header": HEADER}
    entry = {"path": "a/b.fits", "size": 2880, "etag": "x", "last_modified": "t", "hdus": [hdu]}
    return {
        "format": "cloudfits-index",
        "version": 1,
        "generator": "cloudfits",
        "created": "2026-01-01T00:00:00Z",
        "data_uri": "s3://bucket/prefix/",
        "files": [entry],
    }


def _schema_accepts(document: Any) -> bool:
    return jsonschema.Draft202012Validator(index_schema()).is_valid(document)


def test_a_plain_document_passes_both() -> None:
    document = _document()
    assert conforms_plainly(document)
    assert _schema_accepts(document)
    validate_index_document(document, source="mem")


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def edit(document: dict[str, Any]) -> dict[str, Any]:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return document

    return edit


FILE, HDU = ("files", 0), ("files", 0, "hdus", 0)
REFUSED = [
    _set(("format",), "other"),
    _set(("version",), True),
    _set(("version",), 2),
    _set(("generator",), "g" * 1025),
    _set(("created",), None),
    _set(("data_uri",), KeyError),
    _set(("files",), {}),
    _set((*FILE, "path"), "../a.fits"),
    _set((*FILE, "path"), "a/./b.fits"),
    _set((*FILE, "path"), "/abs.fits"),
    _set((*FILE, "path"), "a//b.fits"),
    _set((*FILE, "path"), "a\\b.fits"),
    _set((*FILE, "path"), "a\x1bb.fits"),
    _set((*FILE, "path"), "a\u202eb.fits"),
    _set((*FILE, "path"), ""),
    _set((*FILE, "size"), -1),
    _set((*FILE, "size"), True),
    _set((*FILE, "size"), 2**62 + 1),
    _set((*FILE, "etag"), 5),
    _set((*FILE, "last_modified"), "t" * 65),
    _set((*FILE, "hdus"), []),
    _set((*FILE, "hdus"), KeyError),
    _set((*HDU, "data_size"), -1),
    _set((*HDU, "data_offset"), "2880"),
    _set((*HDU, "header_offset"), KeyError),
    _set((*HDU, "header"), "END"),
    _set((*HDU, "header"), HEADER + "\u0100"),
]


@pytest.mark.parametrize("edit", REFUSED)
def test_what_the_schema_refuses_is_left_to_the_validator(edit: Any) -> None:
    document = edit(_document())
    assert not _schema_accepts(document)
    assert not conforms_plainly(document)
    with pytest.raises(IndexFormatError):
        validate_index_document(document, source="mem")


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["a.fits", "..", "a/../b", "x\n", "a/", HEADER, HEADER + "\u0101", KeyError]),
    st.lists(st.integers(), max_size=2),
)
PLACES = st.sampled_from(
    [
        ("version",),
        ("generator",),
        ("data_uri",),
        ("files",),
        (*FILE, "path"),
        (*FILE, "size"),
        (*FILE, "etag"),
        (*FILE, "gzip"),
        (*FILE, "hdus"),
        (*HDU, "header_offset"),
        (*HDU, "data_size"),
        (*HDU, "header"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(PLACES, VALUES), min_size=1, max_size=3))
def test_plainly_conforming_documents_follow_the_schema(edits: list[Any]) -> None:
    document = _document()
    for place, value in edits:
        try:
            document = _set(place, value)(copy.deepcopy(document))
        except (KeyError, TypeError, IndexError):
            continue
    if conforms_plainly(document):
        assert _schema_accepts(document)
