"""Indexing as Dask tasks on a real ``distributed.LocalCluster`` against local S3.

The cluster's workers are separate processes: they rebuild the S3 provider from the
URI scheme and the options, and find the server and its credentials in the
environment the ``s3_server`` fixture set before the cluster started. Indexes made
on Dask must equal the thread pool's, whose layouts are checked against astropy's
own reading of the same files.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.index.build import find_fits_objects
from cloudfits.scale.executors import ScanJob
from cloudfits.testing.seaweedfs import S3Server

distributed = pytest.importorskip("distributed")

BUCKET = "dask-indexing"
N_OBJECTS = 36
CLOUDFITS_INDEX = "from cloudfits.cli import index_main; raise SystemExit(index_main())"


def _hdus(i: int) -> fits.HDUList:
    """Object ``i``: a primary HDU and 1 to 4 extensions of several kinds and sizes."""
    rng = np.random.default_rng(i)
    primary = fits.PrimaryHDU(rng.integers(0, 100, size=(i % 5 + 1, 7), dtype=np.int16))
    primary.header["OBJECT"] = f"target {i}"
    extensions: list[Any] = [
        fits.ImageHDU(rng.normal(size=(12 + i, 9)).astype(np.float32), name="SCI"),
        fits.BinTableHDU.from_columns(
            [
                fits.Column("TIME", "D", array=np.arange(i + 3, dtype=float)),
                fits.Column("FLUX", "3E", unit="e/s", array=rng.normal(size=(i + 3, 3))),
                fits.Column("SPEC", "PJ()", array=[np.arange(k % 4) for k in range(i + 3)]),
            ],
            name="EVENTS",
        ),
        fits.TableHDU.from_columns(
            [fits.Column("NAME", "A8", array=[f"s{k}" for k in range(i % 6 + 1)])], name="ASCII"
        ),
        fits.CompImageHDU(rng.integers(0, 500, size=(40, 30)).astype(np.int32), name="COMP"),
    ]
    return fits.HDUList([primary, *extensions[: i % 4 + 1]])


def _fits_bytes(i: int) -> bytes:
    out = io.BytesIO()
    _hdus(i).writeto(out)
    return out.getvalue()


def _without_created(index: cloudfits.FitsIndex) -> dict[str, Any]:
    document = index.to_dict()
    del document["created"]
    return document


@pytest.fixture(scope="module")
def objects(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``N_OBJECTS`` multi-HDU files, written locally and uploaded under ``multi/``."""
    s3_server.create_bucket(BUCKET)
    client = s3_server.client()
    directory = tmp_path_factory.mktemp("dask-indexing")
    for i in range(N_OBJECTS):
        data = _fits_bytes(i)
        (directory / f"obj{i:03d}.fits").write_bytes(data)
        client.put_object(Bucket=BUCKET, Key=f"multi/obj{i:03d}.fits", Body=data)
    return directory


@pytest.fixture(scope="module")
def cluster(s3_server: S3Server) -> Iterator[Any]:
    """Two worker processes on 127.0.0.1, started after the S3 environment is set."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


def _upload_with_bad_objects(s3_server: S3Server, prefix: str) -> dict[str, bytes]:
    """Good objects, a truncated one and one that is no FITS at all, under ``prefix``."""
    bodies = {f"good{i}.fits": _fits_bytes(i) for i in range(8)}
    bodies["truncated.fits"] = _fits_bytes(40)[: 2880 * 3 + 100]  # cut inside an HDU
    bodies["garbage.fits"] = b"this is not a FITS file" * 200
    s3_server.create_bucket(BUCKET)  # also when no test that uses ``objects`` ran first
    client = s3_server.client()
    for name, body in bodies.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body)
    return bodies


# ------------------------------------------------------------------ identical results


@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_dask_index_equals_the_thread_index(
    objects: Path, client: Any, batch_size: int | None
) -> None:
    source = f"s3://{BUCKET}/multi/"
    threads = cloudfits.build_index(source)
    seen: list[cloudfits.ObjectInfo] = []
    stats = cloudfits.ReadStats()
    on_dask = cloudfits.build_index(
        source, executor=client, batch_size=batch_size, on_scanned=seen.append, stats=stats
    )
    assert _without_created(on_dask) == _without_created(threads)
    assert on_dask.failures == []
    assert sorted(info.path for info in seen) == [
        f"{BUCKET}/multi/obj{i:03d}.fits" for i in range(N_OBJECTS)
    ]
    # The workers' requests are counted here: at least one per object.
    assert N_OBJECTS <= stats.requests < 4 * N_OBJECTS
    assert stats.bytes > 0


def test_thread_index_layout_is_astropys(objects: Path) -> None:
    """The layouts compared above are right: offsets and headers as astropy reads them."""
    index = cloudfits.build_index(f"s3://{BUCKET}/multi/")
    assert len(index.files) == N_OBJECTS
    hdu_kinds = set()
    for entry in index.files:
        raw = (objects / entry.path).read_bytes()
        with fits.open(objects / entry.path) as hdul:
            assert len(entry.hdus) == len(hdul)
            for n, layout in enumerate(entry.hdus):
                info = hdul.fileinfo(n)
                assert layout.header_offset == info["hdrLoc"]
                assert layout.data_offset == info["datLoc"]
                assert layout.data_size <= info["datSpan"]
                header = raw[info["hdrLoc"] : info["datLoc"]].decode("ascii")
                assert header.rstrip() == layout.header.rstrip()
                hdu_kinds.add(type(hdul[n]).__name__)
    assert {"PrimaryHDU", "ImageHDU", "BinTableHDU", "TableHDU"} <= hdu_kinds


def test_scheduler_address_as_executor(objects: Path, cluster: Any) -> None:
    source = f"s3://{BUCKET}/multi/"
    on_dask = cloudfits.build_index(source, executor=cluster.scheduler_address)
    assert _without_created(on_dask) == _without_created(cloudfits.build_index(source))


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("executor", ["threads", "dask"])
def test_collect_reports_failures_and_indexes_the_rest(
    s3_server: S3Server, client: Any, executor: str
) -> None:
    prefix = f"collect-{executor}"
    bodies = _upload_with_bad_objects(s3_server, prefix)
    found = find_fits_objects(f"s3://{BUCKET}/{prefix}/")
    assert len(found.objects) == len(bodies)
    # After the listing: one object is deleted, another replaced.
    s3_server.client().delete_object(Bucket=BUCKET, Key=f"{prefix}/good3.fits")
    s3_server.client().put_object(Bucket=BUCKET, Key=f"{prefix}/good5.fits", Body=_fits_bytes(9))

    index = cloudfits.build_index(
        found, executor=client if executor == "dask" else None, errors="collect", batch_size=3
    )

    failed = {f.path: f for f in index.failures}
    assert sorted(failed) == ["garbage.fits", "good3.fits", "good5.fits", "truncated.fits"]
    assert [f.path for f in index.failures] == sorted(failed)
    assert failed["good3.fits"].error == "ObjectNotFoundError"
    assert failed["good5.fits"].error == "StaleIndexError"
    assert failed["truncated.fits"].error == "FitsFormatError"
    assert failed["garbage.fits"].error == "FitsFormatError"
    for path, failure in failed.items():
        assert failure.uri == f"s3://{BUCKET}/{prefix}/{path}"
        assert failure.uri in failure.message
    good = [f"good{i}.fits" for i in (0, 1, 2, 4, 6, 7)]
    assert index.paths == good
    for entry in index.files:
        with fits.open(io.BytesIO(bodies[entry.path])) as hdul:
            assert [h.data_offset for h in entry.hdus] == [
                hdul.fileinfo(n)["datLoc"] for n in range(len(hdul))
            ]


def test_raise_is_the_default_on_dask(s3_server: S3Server, client: Any) -> None:
    prefix = "raise-dask"
    client_s3 = s3_server.client()
    for i in range(6):
        client_s3.put_object(Bucket=BUCKET, Key=f"{prefix}/good{i}.fits", Body=_fits_bytes(i))
    client_s3.put_object(Bucket=BUCKET, Key=f"{prefix}/bad.fits", Body=b"SIMPLE" * 1000)
    with pytest.raises(cloudfits.FitsFormatError, match=f"s3://{BUCKET}/{prefix}/bad.fits"):
        cloudfits.build_index(f"s3://{BUCKET}/{prefix}/", executor=client, batch_size=2)


def test_unknown_errors_mode_and_executor_are_refused(objects: Path) -> None:
    with pytest.raises(ValueError, match="errors must be"):
        cloudfits.build_index(objects, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="executor must be"):
        cloudfits.build_index(objects, executor="processes")


def test_task_arguments_show_no_option_values() -> None:
    job = ScanJob("https", "example.org/data", {"headers": {"Authorization": "Bearer s3cr3t"}})
    assert "s3cr3t" not in repr(job)
    assert "headers" in repr(job)


# -------------------------------------------------------------------------------- CLI


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    return subprocess.run(
        [sys.executable, "-c", CLOUDFITS_INDEX, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
        check=False,
    )


def test_cli_on_dask_writes_the_index_and_exits_1_with_failures(
    s3_server: S3Server, cluster: Any
) -> None:
    prefix = "cli-dask"
    _upload_with_bad_objects(s3_server, prefix)
    source = f"s3://{BUCKET}/{prefix}/"
    index_uri = f"s3://{BUCKET}/indexes/{prefix}.json"
    done = _run([source, "--index-uri", index_uri, "--dask-scheduler", cluster.scheduler_address])
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"failed: truncated.fits: FitsFormatError: s3://{BUCKET}/{prefix}/truncated.fits" in (
        done.stderr
    )
    assert "failed: garbage.fits: FitsFormatError: " in done.stderr
    assert "2 of 10 objects could not be indexed; the others are in the index" in done.stderr
    assert "indexed 8 files" in done.stdout
    written = cloudfits.load_index(index_uri)
    expected = cloudfits.build_index(source, errors="collect")
    assert _without_created(written) == _without_created(expected)

    # The same through ``cloudfits index --executor dask`` and the Dask environment.
    done = _run(
        [source, "--index-uri", index_uri, "--executor", "dask", "--json"],
        env={"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address},
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["files"] == 8
    assert [(f["path"], f["error"]) for f in report["failures"]] == [
        ("garbage.fits", "FitsFormatError"),
        ("truncated.fits", "FitsFormatError"),
    ]


def test_cli_dask_without_a_scheduler_says_how(objects: Path, tmp_path: Path) -> None:
    done = _run([str(objects), "--index-uri", str(tmp_path / "i.json"), "--executor", "dask"])
    assert done.returncode == 1
    assert "--dask-scheduler" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "i.json").exists()


def test_without_dask_threads_work_and_dask_says_what_to_install(
    objects: Path, tmp_path: Path
) -> None:
    script = f"""
import sys
sys.modules["distributed"] = None  # as if the dask extra were not installed
import cloudfits
index = cloudfits.build_index({str(objects)!r})
print(len(index.files))
try:
    cloudfits.build_index({str(objects)!r}, executor="tcp://127.0.0.1:1")
except cloudfits.CloudFitsError as err:
    print(err)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    count, message = done.stdout.splitlines()
    assert int(count) == N_OBJECTS
    assert "pip install 'cloudfits[dask]'" in message


def test_archive_flow_on_dask(client: Any, tess_bucket: str, tess_cube: Path) -> None:
    """Index on Dask, store as format v2, load, search, then reduce a cube on Dask."""
    index = cloudfits.build_index(f"{tess_bucket}/", executor=client)
    assert index.failures == []
    uri = "s3://tess-fits-cloud-index/scale/cloudfits-index.parquet"
    index.save(uri)
    loaded = cloudfits.load_index(uri)
    assert loaded.to_dict() == index.to_dict()
    with fits.open(tess_cube) as local:
        for expression, wanted in [
            (
                "TELESCOP == 'TESS'",
                [i for i, h in enumerate(local) if h.header.get("TELESCOP") == "TESS"],
            ),
            ("NAXIS == 4", [i for i, h in enumerate(local) if h.header["NAXIS"] == 4]),
        ]:
            found = loaded.search(expression)
            assert wanted
            assert [(str(p), int(h)) for p, h in zip(found["path"], found["hdu"], strict=True)] == [
                (tess_cube.name, i) for i in wanted
            ]
    hdu = loaded.open(tess_cube.name)[1]
    with fits.open(tess_cube) as local:
        expected = local[1].data.mean(axis=2)
    got = hdu.to_dask(chunks=(7, -1, -1, -1)).mean(axis=2).compute()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == expected.dtype
