"""Scope of options: what reaches the index never reaches the data its index names.

An index is untrusted input. Two servers on 127.0.0.1 play the index host and the data
host; recording proxies in front of them see every header that arrives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import AccessDeniedError
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server
from cloudfits.uri import is_local_uri

TOKEN = "Bearer canary-index-token-71c2e9"
DATA_TOKEN = "Bearer data-token-0b5d"


def _fits(path: Path) -> np.ndarray:
    data = np.arange(24 * 16, dtype=np.int16).reshape(24, 16)
    fits.PrimaryHDU(data).writeto(path)
    return data


def _index_document(data_dir: Path, data_uri: str) -> bytes:
    document = cloudfits.build_index(str(data_dir)).to_dict()
    document["data_uri"] = data_uri
    return json.dumps(document).encode()


def test_high_1_index_credentials_never_reach_the_data_host(tmp_path: Path) -> None:
    data_dir, index_dir = tmp_path / "data", tmp_path / "index"
    data_dir.mkdir()
    index_dir.mkdir()
    expected = _fits(data_dir / "a.fits")
    with (
        StaticHTTPServer(data_dir) as data_server,
        RecordingProxy(data_server.url) as data_host,
        StaticHTTPServer(index_dir, authorization=TOKEN) as index_server,
        RecordingProxy(index_server.url) as index_host,
    ):
        (index_dir / "i.json").write_bytes(_index_document(data_dir, data_host.url))
        index = cloudfits.load_index(
            f"{index_host.url}/i.json", headers={"Authorization": TOKEN, "X-Api-Key": "k-9"}
        )
        np.testing.assert_array_equal(index.open("a.fits")[0].section[2:5, 3:7], expected[2:5, 3:7])
        # data_options are the ones the data gets.
        index = cloudfits.load_index(
            f"{index_host.url}/i.json",
            headers={"Authorization": TOKEN},
            data_options={"headers": {"Authorization": DATA_TOKEN}},
        )
        np.testing.assert_array_equal(index.open("a.fits")[0].section[0:2], expected[0:2])
        index_records, data_records = index_host.records, data_host.records
    assert index_records
    assert all(r.headers.get("authorization") == TOKEN for r in index_records)
    sent = [r.headers for r in data_records]
    assert len(sent) >= 2
    assert all(TOKEN not in str(h) and "k-9" not in str(h) for h in sent)
    assert sent[-1].get("authorization") == DATA_TOKEN


def test_high_1_requester_pays_reaches_the_data_through_data_options(
    tess_bucket: str, tess_cube: Path, s3_server: S3Server
) -> None:
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        index = cloudfits.build_index(tess_bucket + "/", endpoint_url=proxy.url)
        index.save("s3://tess-fits-cloud-index/scope.json", endpoint_url=proxy.url)
        proxy.reset()
        loaded = cloudfits.load_index(
            "s3://tess-fits-cloud-index/scope.json", requester_pays=True, endpoint_url=proxy.url
        )
        plain = loaded.open(tess_cube.name, endpoint_url=proxy.url)
        plain[1].section[0, 0, 0, 0]
        without = [r for r in proxy.records if "stpubdata" in r.target]
        proxy.reset()
        paying = cloudfits.load_index(
            "s3://tess-fits-cloud-index/scope.json",
            data_options={"requester_pays": True, "endpoint_url": proxy.url},
        )
        paying.open(tess_cube.name)[1].section[0, 0, 0, 0]
        with_rp = [r for r in proxy.records if "stpubdata" in r.target]
    assert without
    assert all("x-amz-request-payer" not in r.headers for r in without)
    assert with_rp
    assert all(r.headers.get("x-amz-request-payer") == "requester" for r in with_rp)


@pytest.mark.parametrize(
    "data_uri",
    ["file:///etc", "/etc", "http://127.0.0.1:9/x", "http://2130706433/x", "http://[::1]/x",
     "http://169.254.169.254/latest", "http://10.0.0.7/x", "http://localhost/x"],
)  # fmt: skip
def test_medium_9_foreign_index_naming_local_data_is_refused(
    data_uri: str, tmp_path: Path, s3_server: S3Server
) -> None:
    _fits(tmp_path / "a.fits")
    s3_server.create_bucket("foreign-index")
    s3_server.client().put_object(
        Bucket="foreign-index", Key="i.json", Body=_index_document(tmp_path, data_uri)
    )
    index = cloudfits.load_index("s3://foreign-index/i.json")
    assert index.foreign
    with pytest.raises(AccessDeniedError, match=r"names local data.*allow_local=True"):
        index.open("a.fits")


def test_medium_9_allow_local_and_local_indexes_may_name_local_data(
    tmp_path: Path, s3_server: S3Server
) -> None:
    expected = _fits(tmp_path / "a.fits")
    s3_server.create_bucket("foreign-index")
    document = _index_document(tmp_path, tmp_path.as_uri())
    s3_server.client().put_object(Bucket="foreign-index", Key="ok.json", Body=document)
    allowed = cloudfits.load_index("s3://foreign-index/ok.json", allow_local=True)
    np.testing.assert_array_equal(allowed.open("a.fits")[0].section[1], expected[1])
    (tmp_path / "i.json").write_bytes(document)
    local = cloudfits.load_index(tmp_path / "i.json")
    assert not local.foreign
    np.testing.assert_array_equal(local.open("a.fits")[0].section[1], expected[1])
    assert not cloudfits.build_index(str(tmp_path)).foreign


@pytest.mark.parametrize(
    ("uri", "local"),
    [("https://example.org/a", False), ("s3://bucket/a", False), ("gs://b/a", False),
     ("http://0x7f.1/a", True), ("https://[::ffff:127.0.0.1]/a", True),
     ("https://u:p@192.168.1.2:8/a", True), ("http://0.0.0.0/a", True), ("/a", True)],
)  # fmt: skip
def test_medium_9_local_addresses_in_every_form(uri: str, local: bool) -> None:
    assert is_local_uri(uri) is local
