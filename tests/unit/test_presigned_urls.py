"""Presigned URLs after a bucket's first are signed by botocore's signer directly and
are the very URLs ``generate_presigned_url`` makes."""

from __future__ import annotations

import datetime

import botocore.auth
import pytest

from cloudfits.providers.location import ObjectLocation


@pytest.mark.parametrize(
    "options",
    [
        {"endpoint_url": "http://127.0.0.1:9"},
        {"endpoint_url": "http://127.0.0.1:9", "requester_pays": True},
        {"region": "eu-west-1"},
        {"endpoint_url": "http://127.0.0.1:9", "anonymous": True},
    ],
)
def test_fast_urls_equal_botocore_urls(
    options: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret/example+key")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    fixed = datetime.datetime(2026, 12, 2, 4, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    provider = ObjectLocation.from_uri("s3://bkt/first.fits", **options).provider()
    first = provider._presign("bkt/first.fits")  # type: ignore[attr-defined]
    assert first is not None
    assert "bkt" in provider._bucket_urls  # type: ignore[attr-defined]
    for key in ("a/b c+d~e=f.fits", "sector 22/tess-s0022-4-4-cube.fits", "ü.fits"):
        fast = provider._presign(f"bkt/{key}")  # type: ignore[attr-defined]
        slow = provider.client.generate_presigned_url(  # type: ignore[attr-defined]
            "get_object", Params={"Bucket": "bkt", "Key": key}, ExpiresIn=3600
        )
        assert fast == slow
    if options.get("requester_pays"):
        assert "x-amz-request-payer" in first
