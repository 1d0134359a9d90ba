"""Issue 15's canaries for gs://: a bearer token is never shown nor forwarded.

The token is given as an option (and on the command line); then every index, exception
chain, ``repr``, DEBUG record of cloudfits' loggers, command output and pickled dask
graph is searched for it, and recording proxies check that it reaches the store it was
given for and no other host. The emulators accept any token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.testing.canaries import CanaryCollector, CanaryTests, foreign_index, run_cli
from cloudfits.testing.gcs import GCSServer
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.process import free_port
from cloudfits.testing.proxy import RecordingProxy

BUCKET = "canaries"
TOKEN = "ya29.canary-gcs-token-5d0e7a31"


class TestGCSCanaries(CanaryTests):
    @pytest.fixture(scope="class")
    @classmethod
    def bucket(cls, gcs_server: GCSServer, local: Path) -> Any:
        gcs_server.create_bucket(BUCKET)
        bucket = gcs_server.client().bucket(BUCKET)
        bucket.blob("data/a.fits").upload_from_filename(str(local / "a.fits"))
        return bucket

    def test_canaries_gcs_token_appears_nowhere(
        self, gcs_server: GCSServer, bucket: Any, local: Path
    ) -> None:
        with (
            RecordingProxy(gcs_server.endpoint_url) as store,
            CanaryCollector([TOKEN]) as found,
        ):
            options = {"endpoint_url": store.url, "token": TOKEN}
            f = self.add_round_trip(
                found,
                f"gs://{BUCKET}",
                "idx/i.json",
                lambda name: bytes(bucket.blob(name).download_as_bytes()),
                local,
                options,
            )
            dead = {**options, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
            self.add_provider_outputs(found, f, f"gs://{BUCKET}/data/a.fits", options, dead)
            flags = ["--endpoint-url", store.url, "--token", TOKEN]
            for args in (
                ["info", f"gs://{BUCKET}/data/a.fits", *flags],
                ["info", "--json", f"gs://{BUCKET}/data/a.fits", *flags],
                ["info", f"gs://{BUCKET}/data/b.fits", *flags],
            ):
                done = run_cli(args)
                found.add(f"cloudfits {args[0]}", done.stdout + done.stderr)
            assert "a.fits" in found.texts[-3][1]
            print(f"\n{found.check()} outputs searched, no token found")
            sent = store.records
        # The token went to the store it was given for, on every request.
        assert sent
        assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in sent)

    def test_high_1_canaries_gcs_token_never_reaches_another_host(
        self, gcs_server: GCSServer, bucket: Any, local: Path
    ) -> None:
        expected = fits.getdata(local / "a.fits")
        with (
            StaticHTTPServer(local) as server,
            RecordingProxy(server.url) as web_host,
            RecordingProxy(gcs_server.endpoint_url) as other_store,
            RecordingProxy(gcs_server.endpoint_url) as own_store,
        ):
            options = {"endpoint_url": own_store.url, "token": TOKEN}
            # A foreign index in the bucket whose data lives on a web server.
            bucket.blob("idx/web.json").upload_from_string(foreign_index(local, web_host.url))
            index = cloudfits.load_index(f"gs://{BUCKET}/idx/web.json", allow_local=True, **options)
            np.testing.assert_array_equal(index.open("a.fits")[0].section[0:4], expected[0:4])
            # One whose data is gs:// too, read through another endpoint.
            document = cloudfits.build_index(
                f"gs://{BUCKET}/data/", endpoint_url=gcs_server.endpoint_url
            ).to_bytes()
            bucket.blob("idx/gs.json").upload_from_string(document)
            index = cloudfits.load_index(
                f"gs://{BUCKET}/idx/gs.json",
                data_options={"endpoint_url": other_store.url},
                allow_local=True,
                **options,
            )
            np.testing.assert_array_equal(index.open("a.fits")[0].section[0:4], expected[0:4])
            elsewhere = [*web_host.records, *other_store.records]
            mine = own_store.records
        assert web_host.records
        assert other_store.records
        assert not [r for r in elsewhere if TOKEN in json.dumps(r.headers) + r.target]
        assert not [r for r in elsewhere if "authorization" in r.headers]
        assert mine
        assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in mine)
