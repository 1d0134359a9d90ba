"""A web server that ignores ``Range``: what crossed the network is counted, and said."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

import cloudfits
from cloudfits.errors import CloudFitsWarning
from cloudfits.testing.http import StaticHTTPServer


def test_a_server_ignoring_range_is_counted_and_warned_about_once(tmp_path: Path) -> None:
    data = np.arange(512 * 512, dtype=np.int32).reshape(512, 512)
    path = tmp_path / "big.fits"
    fits.PrimaryHDU(data).writeto(path)
    size = path.stat().st_size
    with StaticHTTPServer(tmp_path, ignore_ranges=True) as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f = cloudfits.open(server.url + "/big.fits")
            before = f.stats
            tail = f[0].section[500:502, :]
            middle = f[0].section[256, :4]
        spent = f.stats - before
    assert np.array_equal(tail, data[500:502])
    assert np.array_equal(middle, data[256, :4])
    # Each read came with the whole object before its bytes: 2 rows near the end
    # alone are preceded by about 1 MB.
    assert spent.bytes >= (2880 + 500 * 512 * 4) + (2880 + 256 * 512 * 4), spent
    assert spent.bytes <= 3 * size
    ignoring = [w for w in caught if issubclass(w.category, CloudFitsWarning)]
    assert len(ignoring) == 1, [str(w.message) for w in caught]
    assert "ignores Range" in str(ignoring[0].message)
