"""Reading an index document that anyone may have edited: bounded, then schema-checked.

An index is a shared file, so it is untrusted input. Before any field is used the
document is

1. decompressed (when gzip) with a bound on its expansion, so that a small "gzip bomb"
   cannot take gigabytes of memory;
2. parsed as JSON, after a check that it holds no more arrays and objects than an
   index of its size can (a deep ``[[[[...`` is refused too, not a crash);
3. checked against the JSON schema shipped with cloudfits,
   ``cloudfits/schemas/index-v1.schema.json``.

Every failure is an `cloudfits.IndexFormatError` naming the source.
"""

from __future__ import annotations

import json
import re
import zlib
from functools import cache
from importlib import resources
from typing import Any

from ..errors import IndexFormatError

__all__ = [
    "MAX_GZIP_EXPANSION",
    "MAX_INDEX_BYTES",
    "SCHEMA_RESOURCE",
    "conforms_plainly",
    "gzip_within_bound",
    "index_schema",
    "parse_index_document",
    "validate_index_document",
]

#: The schema of index format version 1, in the package ``cloudfits``.
SCHEMA_RESOURCE = "schemas/index-v1.schema.json"
#: Largest index document accepted, in bytes after decompression.
MAX_INDEX_BYTES = 2 * 1024**3
#: A gzip index may expand at most this many times beyond the first `_EXPANSION_FLOOR`
#: bytes. Indexes of TESS cubes expand 9 to 12 times, indexes of many files with short,
#: alike headers about 60 times; cloudfits refuses to write one that would expand more
#: (`gzip_within_bound`), so every index it writes loads. A gzip document under 1 MiB
#: then decompresses to at most 260 MiB, against 2 GiB (`MAX_INDEX_BYTES`) for any.
MAX_GZIP_EXPANSION = 256
_EXPANSION_FLOOR = 4 * 1024 * 1024
_CHUNK = 64 * 1024


@cache
def index_schema() -> dict[str, Any]:
    """The JSON schema of index format version 1, as a dictionary."""
    text = resources.files("cloudfits").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(index_schema())


def expansion_budget(compressed_bytes: int, limit: int = MAX_INDEX_BYTES) -> int:
    """Most bytes that ``compressed_bytes`` of gzip data may decompress to."""
    return min(limit, _EXPANSION_FLOOR + MAX_GZIP_EXPANSION * compressed_bytes)


def gzip_within_bound(document_bytes: int, compressed_bytes: int) -> bool:
    """Whether a gzip document of these sizes loads (the bound `_gunzip` applies)."""
    return document_bytes <= expansion_budget(compressed_bytes)


def _gunzip(data: bytes, source: str, limit: int) -> bytearray:
    """Decompress gzip ``data``, refusing to produce more than the expansion bound."""
    inflater = zlib.decompressobj(wbits=31)
    out = bytearray()
    consumed = 0
    pending = data
    while pending:
        piece = pending[:_CHUNK]
        pending = pending[_CHUNK:]
        consumed += len(piece)
        budget = expansion_budget(consumed, limit)
        while piece:
            try:
                out += inflater.decompress(piece, budget + 1 - len(out))
            except zlib.error as err:
                raise IndexFormatError(f"{source}: broken gzip data: {err}") from err
            if len(out) > budget:
                raise IndexFormatError(
                    f"{source}: the gzip data expands more than {MAX_GZIP_EXPANSION} times"
                    f" (or past {limit} bytes): refused as a decompression bomb (cloudfits"
                    " never writes one); store such an index as .json or .parquet"
                )
            piece = inflater.unconsumed_tail
        if inflater.eof:
            break
    if not inflater.eof:
        raise IndexFormatError(f"{source}: broken gzip data: truncated")
    return out


def _containers_ok(text: bytes | bytearray) -> bool:
    """False when arrays/objects are too many for an index of this many bytes.

    Each HDU of a real index is one object of a few hundred bytes (its header holds
    at least two 80-character cards), so an index has far fewer than one ``{`` or ``[``
    per 32 bytes; a document of nothing but ``[{},{},...`` would make Python objects
    of some 60 times its size.
    """
    return text.count(b"{") + text.count(b"[") <= len(text) // 32 + 1024


def parse_index_document(data: bytes, *, source: str, limit: int = MAX_INDEX_BYTES) -> Any:
    """Decompress (when gzip) and parse an index document, within bounds.

    Parameters
    ----------
    data : bytes
        The document as stored.
    source : str
        Where it came from, for messages.
    limit : int
        Most bytes accepted after decompression.

    Raises
    ------
    IndexFormatError
        Broken gzip data, a decompression bomb, a document over ``limit`` bytes, JSON
        that does not parse, nests too deeply or holds too many arrays and objects.
    """
    raw: bytes | bytearray = data
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(data, source, limit)
    if len(raw) > limit:
        raise IndexFormatError(f"{source}: {len(raw)} bytes is more than {limit}")
    if not _containers_ok(raw):
        raise IndexFormatError(f"{source}: too many JSON arrays and objects for an index")
    try:
        # Decoded here, and the bytes dropped, so that at most two copies exist at once.
        text = raw.decode("utf-8")
        del raw
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise IndexFormatError(f"{source}: not JSON: {err}") from err


def validate_index_document(document: Any, *, source: str) -> None:
    """Check a parsed document against the schema of index format version 1.

    Raises
    ------
    IndexFormatError
        Naming the first offending field by its JSON path.
    """
    if conforms_plainly(document):
        return
    import jsonschema

    try:
        _validator().validate(document)
    except jsonschema.ValidationError as err:
        raise IndexFormatError(f"{source}: {_describe(err)}") from None


def _is_offset(value: Any) -> bool:
    return type(value) is int and 0 <= value <= _MAX_OFFSET


@cache
def _path_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The schema's own patterns of a file path: the one it must match, the one it must not."""
    path = index_schema()["$defs"]["file"]["properties"]["path"]
    return re.compile(path["pattern"]), re.compile(path["not"]["pattern"])


_MAX_OFFSET = 4611686018427387904
_TOP_STRINGS = {"generator": 1024, "created": 64, "data_uri": 8192}
_FILE_STRINGS = {"etag": 1024, "last_modified": 64}
_HDU_KEYS = ("header_offset", "data_offset", "data_size", "header")


def conforms_plainly(document: Any) -> bool:
    """True when a document plainly follows the schema: the common case, checked in
    plain Python (a validator takes 50 ms to import, and far longer for a large index).

    Stricter than the schema (``1.0`` is not taken for an integer; any ``gzip`` entry
    is left to the validator), so False only means that the validator decides, and
    words the error. Every constraint of the schema on the fields checked is checked.
    """
    if type(document) is not dict or document.get("format") != "cloudfits-index":
        return False
    version, files = document.get("version"), document.get("files")
    if type(version) is not int or version != 1 or type(files) is not list:
        return False
    for key, longest in _TOP_STRINGS.items():
        value = document.get(key)
        if type(value) is not str or len(value) > longest:
            return False
    must, must_not = _path_patterns()
    for entry in files:
        if type(entry) is not dict or "gzip" in entry or not _is_offset(entry.get("size")):
            return False
        path, hdus = entry.get("path"), entry.get("hdus")
        if type(path) is not str or not 1 <= len(path) <= 4096 or type(hdus) is not list:
            return False
        if must.search(path) is None or must_not.search(path) is not None or not hdus:
            return False
        for key, longest in _FILE_STRINGS.items():
            value = entry.get(key, "")
            if type(value) is not str or len(value) > longest:
                return False
        for hdu in hdus:
            if type(hdu) is not dict or not all(_is_offset(hdu.get(k)) for k in _HDU_KEYS[:3]):
                return False
            header = hdu.get("header")
            if type(header) is not str or len(header) < 80 or not _latin1(header):
                return False
    return True


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


_TYPE_NAMES = {"integer": "int", "string": "str", "array": "list", "object": "dict"}


def _describe(err: Any) -> str:
    """A schema violation in the words of the rest of cloudfits' index messages."""
    where = err.json_path
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = next(k for k in err.validator_value if k not in err.instance)
        return f"{where}: missing {missing!r}"
    key = err.path[-1] if err.path else where
    if err.validator == "type":
        wanted = _TYPE_NAMES.get(str(err.validator_value), str(err.validator_value))
        return f"{where}: {key!r} must be {wanted}, not {_short(repr(err.instance), 40)}"
    if err.validator == "minimum":
        return f"{where}: {key!r} must not be negative (it is {err.instance})"
    if key == "path":
        return (
            f"{where}: path {_short(repr(err.instance), 200)} must be relative, '/'-separated,"
            " and must not contain '..', '.', empty parts, backslashes or control characters"
        )
    if key == "header" and err.validator == "pattern":
        bad = re.search(r"[^\x00-\xff]", err.instance)
        return f"{where}: header character {bad.start() if bad else 0} is not a Latin-1 byte"
    return f"{where} does not follow the index schema: {_short(err.message, 300)}"


def _short(message: str, limit: int) -> str:
    return message if len(message) <= limit else message[:limit] + "..."
