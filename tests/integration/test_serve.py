"""``cloudfits serve`` against astroquery's own TESSCut client, on a real uvicorn server.

A TESS-layout cube made by astrocut's CubeFactory lies in SeaweedFS at
``s3://stpubdata/tess/public/mast/tess-s0001-1-1-cube.fits``; it is indexed, served
on 127.0.0.1, and astroquery's ``TesscutClass`` is pointed at the server. Its
answers must equal astrocut's ``TessCubeCutout`` on the local cube.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

import cloudfits
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server, free_port

astrocut = pytest.importorskip("astrocut")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from astrocut import TessCubeCutout  # noqa: E402
from astrocut.cube_cutout import CubeCutout  # noqa: E402

from cloudfits.astro.serve import ServeLimits, create_app  # noqa: E402

CUBE_KEY = "tess/public/mast/tess-s0001-1-1-cube.fits"
SHAPE = (24, 30)  # rows, columns: not square, so a swapped axis shows
FRAMES = 6


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", astrocut.exceptions.DataWarning)
        yield


@pytest.fixture(scope="module")
def sector1_cube(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cloudfits.testing.tess import make_tess_cube

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_tess_cube(
            tmp_path_factory.mktemp("sector1"),
            n_frames=FRAMES,
            shape=SHAPE,
            sector=1,
            camera=1,
            ccd=1,
        )


@pytest.fixture(scope="module")
def served_index(s3_server: S3Server, sector1_cube: Path) -> cloudfits.FitsIndex:
    s3_server.create_bucket("stpubdata")
    s3_server.client().upload_file(str(sector1_cube), "stpubdata", CUBE_KEY)
    # The one cube (other tests keep cubes of their own under the same prefix).
    return cloudfits.build_index(f"s3://stpubdata/{CUBE_KEY}")


class _Server:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(served_index: cloudfits.FitsIndex) -> Iterator[_Server]:
    limits = ServeLimits(max_cutout_pixels=400, max_active=2, max_waiting=0)
    with _Server(create_app(served_index, limits)) as running:
        yield running


@pytest.fixture
def tesscut(server: _Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    from astroquery.mast import TesscutClass
    from astroquery.mast.services import ServiceAPI

    monkeypatch.setattr(ServiceAPI, "SERVICE_URL", server.url)
    return TesscutClass()


def _sky(cube: Path, x: float, y: float) -> SkyCoord:
    with fits.open(cube) as hdul:
        wcs = CubeCutout.parse_table_wcs(hdul[2].data, "CTYPE2", "DEC--TAN-SIP")
    sky: SkyCoord = wcs.pixel_to_world(x, y)
    return sky


def _assert_same(ours: fits.HDUList, cube: Path, where: SkyCoord, size: Any) -> None:
    made = TessCubeCutout([str(cube)], where, size).tpf_cutouts[0]
    buffer = io.BytesIO()
    made.writeto(buffer, checksum=True)  # as astrocut writes its zips
    theirs = fits.open(io.BytesIO(buffer.getvalue()))
    for name in ("TIME", "FLUX", "FLUX_ERR"):
        got, want = np.asarray(ours[1].data[name]), np.asarray(theirs[1].data[name])
        assert got.shape == want.shape, name
        assert got.dtype.str[1:] == want.dtype.str[1:], name
        np.testing.assert_array_equal(got, want, err_msg=name)  # NaN equals NaN here
    assert ours[2].header["NAXIS1"] == theirs[2].header["NAXIS1"]
    ours = fits.HDUList(list(ours))  # astroquery overwrites HDUList.filename with a str
    diff = fits.FITSDiff(ours, theirs, ignore_keywords=["CHECKSUM", "DATASUM", "DATE"])
    assert diff.identical, diff.report()


def test_get_sectors_inside_and_outside(tesscut: Any, sector1_cube: Path) -> None:
    inside = tesscut.get_sectors(coordinates=_sky(sector1_cube, 15.0, 12.0))
    assert list(inside["sectorName"]) == ["tess-s0001-1-1"]
    assert (inside["sector"][0], inside["camera"][0], inside["ccd"][0]) == (1, 1, 1)
    far = _sky(sector1_cube, 15.0, 12.0).directional_offset_by(0, 5 * 3.6e-3 * 60)
    with pytest.warns(Warning, match="not in any TESS sector"):
        outside = tesscut.get_sectors(coordinates=far)
    assert len(outside) == 0
    # The edge: 3 pixels past the last column is out, unless the radius reaches it.
    edge = _sky(sector1_cube, SHAPE[1] - 1 + 3.0, 12.0)
    with pytest.warns(Warning, match="not in any TESS sector"):
        assert len(tesscut.get_sectors(coordinates=edge)) == 0
    assert len(tesscut.get_sectors(coordinates=edge, radius=4 * 21 / 3600)) == 1


@pytest.mark.parametrize(("x", "y", "size"), [(14.2, 9.7, 5), (2.0, 21.5, (3, 7))])
def test_get_cutouts_equal_astrocut(
    tesscut: Any, sector1_cube: Path, x: float, y: float, size: Any
) -> None:
    where = _sky(sector1_cube, x, y)
    cutouts = tesscut.get_cutouts(coordinates=where, size=size)
    assert len(cutouts) == 1
    _assert_same(cutouts[0], sector1_cube, where, size)


def test_download_cutouts_equal_astrocut(tesscut: Any, sector1_cube: Path, tmp_path: Path) -> None:
    where = _sky(sector1_cube, 20.4, 5.5)
    manifest = tesscut.download_cutouts(coordinates=where, size=6, sector=1, path=tmp_path)
    (local,) = list(manifest["Local Path"])
    made = TessCubeCutout([str(sector1_cube)], where, 6)
    expected = zipfile.ZipFile(made.write_as_zip(tmp_path / "astrocut")).namelist()
    assert [Path(local).name] == expected
    with fits.open(local) as hdulist:
        _assert_same(hdulist, sector1_cube, where, 6)


def test_no_cube_answers_msg(tesscut: Any, sector1_cube: Path, tmp_path: Path) -> None:
    far = _sky(sector1_cube, 15.0, 12.0).directional_offset_by(90, 10 * 3.6e-3 * 60)
    with pytest.warns(Warning, match="No data found"):
        assert tesscut.get_cutouts(coordinates=far, size=5) == []
    with pytest.warns(Warning, match="No data found"):
        assert len(tesscut.download_cutouts(coordinates=far, size=5, path=tmp_path)) == 0
    inside = _sky(sector1_cube, 15.0, 12.0)
    with pytest.warns(Warning, match="No data found"):
        assert tesscut.get_cutouts(coordinates=inside, size=5, sector=7) == []


def _get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.mark.parametrize(
    ("query", "status", "parameter"),
    [
        ("ra=abc&dec=1", 400, "ra"),
        ("ra=1&dec=95", 400, "dec"),
        ("dec=1", 400, "ra"),
        ("ra=1&dec=1&radius=2parsec", 400, "radius"),
    ],
)
def test_bad_parameters_are_json_4xx(
    server: _Server, query: str, status: int, parameter: str
) -> None:
    code, headers, body = _get(f"{server.url}/tesscut/api/v0.1/sector?{query}")
    assert code == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["parameter"] == parameter


def test_limits_and_unknown_paths(server: _Server, sector1_cube: Path) -> None:
    where = _sky(sector1_cube, 15.0, 12.0)
    big = f"ra={where.ra.deg}&dec={where.dec.deg}&x=30&y=30&units=px"
    code, _, body = _get(f"{server.url}/tesscut/api/v0.1/astrocut?{big}")
    assert code == 413
    assert "limit" in json.loads(body)["message"]
    for path in ("../../etc/passwd", "s3://other/x.fits", "tess-s0002-1-1-cube.fits"):
        query = f"path={urllib.parse.quote(path)}&ra=1&dec=1&size=3"
        code, _, body = _get(f"{server.url}/api/v1/cutout?{query}")
        assert code == 404
        assert json.loads(body)["parameter"] == "path"
    code, _, _ = _get(f"{server.url}/tesscut/api/v0.1/sector", b"x" * 300_000,
                      {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert code == 413


def test_api_v1_files_header_cutout_batch(server: _Server, sector1_cube: Path) -> None:
    code, _, body = _get(f"{server.url}/api/v1/files")
    listing = json.loads(body)
    (entry,) = listing["files"]
    assert entry["path"] == "tess-s0001-1-1-cube.fits"
    assert entry["hdus"][1]["shape"] == [*SHAPE, FRAMES, 2]
    code, _, body = _get(f"{server.url}/api/v1/header?path={entry['path']}&hdu=2")
    with fits.open(sector1_cube) as hdul:
        assert json.loads(body)["cards"][:8] == [c.image for c in hdul[2].header.cards][:8]
    where = _sky(sector1_cube, 8.0, 8.0)
    query = f"path={entry['path']}&ra={where.ra.deg}&dec={where.dec.deg}&size=4"
    code, headers, body = _get(f"{server.url}/api/v1/cutout?{query}")
    assert code == 200
    assert headers["content-type"] == "application/fits"
    _assert_same(fits.open(io.BytesIO(body)), sector1_cube, where, 4)
    code, headers, body = _get(f"{server.url}/api/v1/cutout?{query}&format=png")
    assert code == 200
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    # A batch: three targets of the cube, one far away; planned together.
    points = [_sky(sector1_cube, *xy) for xy in ((3.0, 3.0), (4.0, 3.5), (25.0, 20.0))]
    targets = [[p.ra.deg, p.dec.deg] for p in points] + [[0.0, -89.0]]
    document = json.dumps({"targets": targets, "size": 3}).encode()
    code, _, body = _get(f"{server.url}/api/v1/batch", document,
                         {"Content-Type": "application/json"})  # fmt: skip
    assert code == 200
    archive = zipfile.ZipFile(io.BytesIO(body))
    manifest = json.loads(archive.read("manifest.json"))
    assert [m.get("file") is not None for m in manifest] == [True, True, True, False]
    for point, item in zip(points, manifest, strict=False):
        _assert_same(fits.open(io.BytesIO(archive.read(item["file"]))), sector1_cube, point, 3)


def test_access_log_counts_upstream(server: _Server, sector1_cube: Path, caplog: Any) -> None:
    where = _sky(sector1_cube, 11.0, 7.0)
    with caplog.at_level(logging.INFO, logger="cloudfits.serve.access"):
        code, _, _ = _get(
            f"{server.url}/tesscut/api/v0.1/astrocut?ra={where.ra.deg}&dec={where.dec.deg}&x=4&y=4"
        )
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.02)
    assert code == 200
    (line,) = [r.getMessage() for r in caplog.records if "astrocut" in r.getMessage()]
    assert '"GET /tesscut/api/v0.1/astrocut" 200' in line
    requests, nbytes = (int(v) for v in line.split("upstream=")[1].rstrip("B").split("req/"))
    # 4 rows of 4 pixels x 6 frames x 2 planes x 4 bytes: 4 runs of 192 bytes, one request.
    assert 1 <= requests <= 2
    assert 4 * 192 <= nbytes < 4 * 192 + 64 * 1024
    assert "test" not in line.lower().replace("astrocut", "")  # no key, no secret


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,760",
    "--virtual-time-budget=10000",
]


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium (Debian's package) on ``url`` with an empty profile."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CLOUDFITS_REQUIRE_SERVERS", "") not in ("", "0"):
            raise RuntimeError("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    command = [found, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_page_in_headless_chromium(server: _Server, sector1_cube: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    where = _sky(sector1_cube, 15.0, 12.0)
    query = urllib.parse.urlencode(
        {
            "path": "tess-s0001-1-1-cube.fits",
            "ra": f"{where.ra.deg:.6f}",
            "dec": f"{where.dec.deg:.6f}",
            "size": "10",
        }
    )
    url = f"{server.url}/?{query}"
    dom = chromium(url, tmp_path / "profile-dom", "--dump-dom").stdout
    assert 'data-quicklook="loaded"' in dom  # the browser got and decoded the PNG
    assert "<code>tess-s0001-1-1-cube.fits</code>" in dom
    assert "TESS tess-s0001-1-1" in dom
    shot = tmp_path / "page.png"
    chromium(url, tmp_path / "profile-shot", f"--screenshot={shot}")
    pixels = imread(shot)
    assert pixels.shape[:2] == (760, 1100)
    assert float(pixels[..., :3].std()) > 0.05  # not a blank page
    if os.environ.get("CLOUDFITS_SCREENSHOT"):  # how docs/_static/serve-page.png is made
        shutil.copyfile(shot, os.environ["CLOUDFITS_SCREENSHOT"])


@pytest.mark.parametrize("executor", ["threads", "dask"])
def test_batch_cutouts_one_read_per_cube(
    served_index: cloudfits.FitsIndex, sector1_cube: Path, executor: str
) -> None:
    points = [_sky(sector1_cube, *xy) for xy in ((5.0, 5.0), (6.0, 5.5), (20.0, 15.0))]
    before = cloudfits.stats.snapshot()
    if executor == "dask":
        distributed = pytest.importorskip("distributed")
        cluster = distributed.LocalCluster(
            n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
        )
        with cluster, distributed.Client(cluster) as client:
            found = cloudfits.batch_cutouts(
                served_index, [*points, (0.0, -89.0)], 4, executor=client
            )
    else:
        found = cloudfits.batch_cutouts(served_index, [*points, (0.0, -89.0)], 4, executor=executor)
    assert [r.error is None for r in found] == [True, True, True, False]
    for point, result in zip(points, found, strict=False):
        assert result.hdulist is not None
        assert result.cube == "tess-s0001-1-1-cube.fits"
        _assert_same(result.hdulist, sector1_cube, point, 4)
    if executor == "threads":
        requests = cloudfits.stats.snapshot()["requests"] - before["requests"]
        # The footprint's table row, then the cube's primary, frame table and one
        # planned read of all three boxes (neighbouring runs merged).
        assert requests <= 5, requests


def test_busy_worker_answers_503_with_retry_after(
    served_index: cloudfits.FitsIndex, s3_server: S3Server, sector1_cube: Path
) -> None:
    where = _sky(sector1_cube, 9.0, 9.0)
    url = f"/tesscut/api/v0.1/astrocut?ra={where.ra.deg}&dec={where.dec.deg}&x=3&y=3"
    limits = ServeLimits(max_active=1, max_waiting=0, retry_after=7)
    # Every upstream read takes 0.3 s, so the first cutout holds the only place a while.
    with RecordingProxy(s3_server.endpoint_url, delay=0.3) as proxy:
        app = create_app(served_index, limits, endpoint_url=proxy.url)
        with _Server(app) as running:
            first: list[Any] = []
            holder = threading.Thread(target=lambda: first.append(_get(running.url + url)))
            holder.start()
            deadline = time.monotonic() + 10
            while json.loads(_get(running.url + "/healthz")[2])["admitted"] == 0:
                assert time.monotonic() < deadline, "the first request never started"
                time.sleep(0.01)
            code, headers, body = _get(running.url + url)
            holder.join(30)
            again = _get(running.url + url)
    assert code == 503
    assert headers["retry-after"] == "7"
    assert json.loads(body)["error"] == "busy"
    assert first[0][0] == 200
    assert again[0] == 200  # the place is free again
    assert len(zipfile.ZipFile(io.BytesIO(again[2])).namelist()) == 1


def test_cli_serve_with_two_workers(
    served_index: cloudfits.FitsIndex, sector1_cube: Path, tmp_path: Path
) -> None:
    index_path = tmp_path / "index.json"
    served_index.save(str(index_path))
    port = free_port()
    command = [sys.executable, "-m", "cloudfits", "serve", str(index_path), "--port", str(port),
               "--workers", "2"]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("serving 1 files") < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        where = _sky(sector1_cube, 12.0, 6.0)
        query = f"ra={where.ra.deg}&dec={where.dec.deg}&x=4&y=4"
        for _ in range(2):
            code, _, body = _get(f"http://127.0.0.1:{port}/tesscut/api/v0.1/astrocut?{query}")
            assert code == 200
            archive = zipfile.ZipFile(io.BytesIO(body))
            (name,) = archive.namelist()
            _assert_same(fits.open(io.BytesIO(archive.read(name))), sector1_cube, where, 4)
    finally:
        process.terminate()
        process.wait(30)
    assert log.read_text().count("serving 1 files") == 2  # each worker loaded the index
