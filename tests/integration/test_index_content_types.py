"""Every provider stores an index with its format's content type, as the store reports it.

The types are read back by the store's own client (a HEAD), not by the provider that
wrote them: ``.parquet`` is ``application/vnd.apache.parquet``, ``.json``
``application/json``, ``.json.gz`` ``application/gzip``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cloudfits.testing.indexes import EXPECTED_CONTENT_TYPES, saved_content_types
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

BUCKET = "content-types"


@pytest.mark.s3
@pytest.mark.parametrize("scheme", ["s3", "spaces"])
def test_s3_and_spaces_store_the_format_content_type(
    s3_server: S3Server, tmp_path: Path, scheme: str
) -> None:
    s3_server.create_bucket(BUCKET)
    prefix = f"{scheme}-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()

    def head(name: str) -> str | None:
        answer = client.head_object(Bucket=BUCKET, Key=f"{prefix}/{name}")
        return str(answer["ContentType"])

    with RecordingProxy(s3_server.endpoint_url) as proxy:
        base = f"s3://{BUCKET}/{prefix}" if scheme == "s3" else f"spaces://nyc3/{BUCKET}/{prefix}"
        found = saved_content_types(tmp_path, base, head, endpoint_url=proxy.url)
        sent = {
            r.target.split("?")[0].rsplit("/", 1)[-1]: r.headers.get("content-type")
            for r in proxy.records
            if r.method == "PUT"
        }
    assert found == EXPECTED_CONTENT_TYPES
    # On the wire too: the PUT of each index carried its format's type.
    assert sent == {f"index{suffix}": ctype for suffix, ctype in EXPECTED_CONTENT_TYPES.items()}
