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


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/b/k.fits?X-Amz-Credential=a%2F2026%2Fs3&X-Amz-Signature=00ff",
        "https://b.s3.eu-west-1.amazonaws.com/dir/a%20b%2B%C3%A9.fits?X-Amz-Date=20261202T0",
        "https://example.org/b/k.fits",
    ],
)
def test_a_parsed_target_is_the_url_it_came_from(url: str) -> None:
    """A read sends the request line parsed once from its presigned URL: put back
    together, it is that URL, percent-encodings as they were."""
    from cloudfits.providers.s3.presigned import _Target

    target = _Target.of(url)
    port = "" if target.port is None else f":{target.port}"
    assert f"{target.scheme}://{target.host}{port}{target.request_uri}" == url


def test_the_resolver_is_warmed_once_per_process() -> None:
    from cloudfits.providers import deadline

    deadline.warm_resolver()
    deadline.warm_resolver()
    assert len(deadline._warmed) == 1
    deadline._warmed[0].join(timeout=10)
    assert not deadline._warmed[0].is_alive()
