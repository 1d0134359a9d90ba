"""An index holds a header as the file's bytes (Latin-1 text), as astropy reads them.

astropy opens headers with any byte in a card: a TAB, a NUL, a line feed, a Latin-1
letter (shown as ``?``). The index keeps those bytes, in both formats, so an indexed
file opens with the header astropy presents.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import FitsIndex, IndexFormatError


def _file_with_odd_bytes(path: Path) -> bytes:
    header = fits.Header([("OBSERVER", "Muller", "who observed")])
    out = io.BytesIO()
    fits.HDUList(
        [fits.PrimaryHDU(np.arange(6.0), header=header), fits.ImageHDU(np.ones(3))]
    ).writeto(out)
    data = bytearray(out.getvalue())
    at = data.index(b"Muller")
    data[at + 1] = 0xFC  # a Latin-1 letter
    comment = data.index(b"who observed")
    data[comment + 3] = 0x09  # a TAB
    data[comment + 7] = 0x0A  # a line feed
    end = data.index(b"END" + b" " * 77)
    data[end + 80 : 2880] = b"\0" * (2880 - end - 80)  # NUL padding after END
    path.write_bytes(bytes(data))
    return bytes(data)


def _presented(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            return [h.header.tostring() for h in hdul]


@pytest.mark.parametrize("form", ["json", "json.gz", "parquet"])
def test_latin1_headers_round_trip(tmp_path: Path, form: str) -> None:
    path = tmp_path / "odd.fits"
    raw = _file_with_odd_bytes(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index = cloudfits.build_index(tmp_path)
        if form == "parquet":
            blob = index.to_parquet()
        else:
            blob = index.to_bytes(compress=form == "json.gz")
        loaded = FitsIndex.from_bytes(blob, source=f"odd.{form}")
        remote = loaded.open("odd.fits")
        stored = remote[0].layout.header
        assert stored.encode("latin-1") == raw[: len(stored)]  # the file's bytes
        assert [h.header.tostring() for h in remote] == _presented(path)
        assert "\u00fc" not in remote[0].header["OBSERVER"]  # "?" as astropy shows it
        assert np.array_equal(remote[0].section[...], np.arange(6.0))


def test_a_character_beyond_latin1_is_refused(tmp_path: Path) -> None:
    _file_with_odd_bytes(tmp_path / "odd.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = cloudfits.build_index(tmp_path).to_dict()
    hdu = document["files"][0]["hdus"][0]
    hdu["header"] = hdu["header"][:100] + "\u20ac" + hdu["header"][101:]
    message = r"bad\.json: .*hdus\[0\].*header character 100 is not a Latin-1 byte"
    with pytest.raises(IndexFormatError, match=message):
        FitsIndex.from_bytes(json.dumps(document).encode(), source="bad.json")
    with pytest.raises(IndexFormatError, match=message):
        FitsIndex.from_dict(document, source="bad.json")
