"""An index of 100,000 TESS-like files (~300,000 HDUs): load time, memory, header search.

Run from the repository root::

    python -m benchmarks.scale_index [--files 100000] [--repeat 3] [--v1-repeat 1]

The index is generated (templated TESS full-frame-image headers whose values vary by
file: OBJECT, EXPTIME, FILTER, DATE-OBS, pointing, WCS), a sample of its headers read
back by astropy, and saved as format version 2 (``.parquet``) and version 1 (``.json``)
in a local directory and in a local SeaweedFS server. Each measurement then runs in a
fresh process: ``load_index`` time and peak RSS (against the RSS of the imports alone),
two header searches, and opening one file's headers, with the requests and bytes of
each step. Medians are printed and written to ``benchmarks/results/scale_index.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "scale_index.json"
TARGETS = {"load_s": 2.0, "peak_rss_mb": 500.0, "query_s": 1.0}
QUERIES = ("OBJECT == 'M31'", "EXPTIME > 100")
OBJECTS = ["M31", "M33", "M42", "M51", "M81", "M101", "NGC 253", "LMC", "SMC", "47 Tuc"] + [
    f"TIC {n}" for n in range(100000000, 100000040)
]
FILTERS = ("g", "r", "i", "z", "TESS")


def _card(key: str, value: Any, comment: str = "") -> str:
    if isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, str):
        text = f"{chr(39) + value.replace(chr(39), chr(39) * 2):<9}'".ljust(20)
    elif isinstance(value, int):
        text = f"{value:>20d}"
    else:
        text = f"{value:>20.10G}"
    card = f"{key:<8}= {text}" + (f" / {comment}" if comment else "")
    return card[:80].ljust(80)


def _filler(prefix: str, count: int) -> list[str]:
    return [_card(f"{prefix}{i:03d}", float(i) * 1.5, "instrument parameter") for i in range(count)]


def _image_cards(extname: str) -> list[str]:
    """The mandatory cards of a 2136x2078 float image extension, and its name."""
    return [
        _card("XTENSION", "IMAGE", "Image extension"),
        _card("BITPIX", -32),
        _card("NAXIS", 2),
        _card("NAXIS1", 2136),
        _card("NAXIS2", 2078),
        _card("PCOUNT", 0),
        _card("GCOUNT", 1),
        _card("EXTNAME", extname),
    ]


def _headers(rng: random.Random, number: int) -> tuple[str, str, str]:
    """Primary (60 cards), image with WCS+SIP (55), uncertainty image (20) of one file."""
    sector, camera, ccd = number % 60 + 1, number % 4 + 1, (number // 4) % 4 + 1
    day = 1 + number % 365
    start = 1600.0 + number * 0.0208
    obj = rng.choice(OBJECTS)
    ra, dec = rng.uniform(0, 360), rng.uniform(-90, 90)
    exptime = rng.choice([20.0, 120.0, 200.0, 600.0, 1800.0]) * rng.uniform(0.95, 1.0)
    primary = [
        _card("SIMPLE", True, "conforms to FITS standards"),
        _card("BITPIX", 8, "array data type"),
        _card("NAXIS", 0, "number of array dimensions"),
        _card("EXTEND", True, "file contains extensions"),
        _card("NEXTEND", 2, "number of standard extensions"),
        _card("TELESCOP", "TESS", "telescope"),
        _card("INSTRUME", "TESS Photometer", "detector type"),
        _card("ORIGIN", "NASA/Ames", "institution responsible for creating this file"),
        _card("DATE", f"2020-{1 + day % 12:02d}-{1 + day % 28:02d}", "file creation date"),
        _card("OBJECT", obj, "target"),
        _card("FILTER", rng.choice(FILTERS), "bandpass"),
        _card("EXPTIME", exptime, "[s] exposure time"),
        _card("SECTOR", sector, "observing sector"),
        _card("CAMERA", camera, "camera number"),
        _card("CCD", ccd, "CCD chip number"),
        _card(
            "DATE-OBS", f"2019-{1 + day % 12:02d}-{1 + day % 28:02d}T00:{number % 60:02d}:00.000"
        ),
        _card(
            "DATE-END", f"2019-{1 + day % 12:02d}-{1 + day % 28:02d}T00:{number % 60:02d}:30.000"
        ),
        _card("TSTART", start, "observation start time in BTJD"),
        _card("TSTOP", start + 0.0208, "observation stop time in BTJD"),
        _card("RA_NOM", ra, "[deg] RA of camera boresight"),
        _card("DEC_NOM", dec, "[deg] Dec of camera boresight"),
        _card("ROLL_NOM", rng.uniform(0, 360), "[deg] roll angle"),
        _card("QUALITY", rng.choice([0, 0, 0, 4, 32]), "quality flags"),
        *_filler("INSPR", 33),
        _card("COMMENT", "Templated TESS-like full-frame image header"),
        "END".ljust(80),
    ]
    wcs = [
        _card("WCSAXES", 2),
        _card("CTYPE1", "RA---TAN-SIP"),
        _card("CTYPE2", "DEC--TAN-SIP"),
        _card("CRPIX1", 1024.5 + rng.uniform(-1, 1)),
        _card("CRPIX2", 1024.5 + rng.uniform(-1, 1)),
        _card("CRVAL1", ra),
        _card("CRVAL2", dec),
        _card("CD1_1", 0.0058 * rng.uniform(0.99, 1.01)),
        _card("CD1_2", rng.uniform(-1e-4, 1e-4)),
        _card("CD2_1", rng.uniform(-1e-4, 1e-4)),
        _card("CD2_2", 0.0058 * rng.uniform(0.99, 1.01)),
        _card("A_ORDER", 2),
        _card("B_ORDER", 2),
        *(_card(f"A_{i}_{j}", rng.uniform(-1e-5, 1e-5)) for i, j in [(0, 2), (1, 1), (2, 0)]),
        *(_card(f"B_{i}_{j}", rng.uniform(-1e-5, 1e-5)) for i, j in [(0, 2), (1, 1), (2, 0)]),
    ]
    image = [
        *_image_cards("CAMERA.CCD"),
        _card("OBJECT", obj),
        _card("EXPTIME", exptime),
        _card("BUNIT", "electrons/s"),
        *wcs,
        *_filler("CALPR", 18),
        "END".ljust(80),
    ]
    uncertainty = [
        *_image_cards("UNCERT"),
        _card("BUNIT", "electrons/s"),
        *_filler("UNCPR", 10),
        "END".ljust(80),
    ]
    return "".join(primary), "".join(image), "".join(uncertainty)


def make_index(files: int, seed: int = 7) -> Any:
    """A FitsIndex of ``files`` TESS-like files, three HDUs each."""
    from cloudfits.fits.scan import HDULayout, padded
    from cloudfits.index import FileEntry, FitsIndex

    rng = random.Random(seed)
    image_bytes = 2136 * 2078 * 4
    entries = []
    for number in range(files):
        headers = _headers(rng, number)
        offset = 0
        hdus = []
        for header, size in zip(headers, (0, image_bytes, image_bytes), strict=False):
            data = offset + padded(len(header))
            hdus.append(HDULayout(offset, data, size, header))
            offset = data + padded(size)
        sector = number % 60 + 1
        path = f"s{sector:04d}/cam{number % 4 + 1}/tess{number:07d}-s{sector:04d}-ffic.fits"
        etag = '"' + f"{rng.getrandbits(128):032x}" + '"'
        modified = f"2024-01-{1 + number % 28:02d}T12:00:00+00:00"
        entries.append(FileEntry(path, offset, tuple(hdus), etag, modified))
    return FitsIndex("s3://stpubdata/tess/public/ffi", entries, created="2026-01-01T00:00:00+00:00")


def _check_sample(index: Any) -> None:
    from astropy.io.fits import Header

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for entry in index.files[:: max(1, len(index.files) // 50)]:
            for hdu in entry.hdus:
                header = Header.fromstring(hdu.header)
                assert len(header.cards) == len(hdu.header) // 80 - 1, entry.path
                for card in header.cards:
                    assert card.value is not None, (entry.path, card.keyword)


# -- one measurement, in a fresh process -----------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB.

    Not ``getrusage(...).ru_maxrss``: Linux keeps that across ``execve``, so a process
    started by a large parent reports the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(uri: str) -> dict[str, Any]:
    """Load ``uri``, search it twice, open one file: seconds, bytes, requests, memory."""
    import astropy.table  # noqa: F401  (the search returns Tables: part of the baseline)
    import pyarrow.parquet  # noqa: F401

    import cloudfits

    stats = cloudfits.stats
    baseline = _peak_rss_mb()

    def step(run: Any) -> tuple[Any, dict[str, float]]:
        before = stats.snapshot()
        started = time.perf_counter()
        value = run()
        seconds = time.perf_counter() - started
        after = stats.snapshot()
        return value, {
            "s": seconds,
            "requests": after["requests"] - before["requests"],
            "bytes": after["bytes"] - before["bytes"],
        }

    index, load = step(lambda: cloudfits.load_index(uri))
    load_rss = _peak_rss_mb()
    result: dict[str, Any] = {"load": load, "files": len(index), "rss_imports_mb": baseline}
    result["rss_after_load_mb"] = load_rss
    for name, query in zip(("query_object", "query_exptime"), QUERIES, strict=False):
        table, timing = step(lambda q=query: index.search(q))
        result[name] = {**timing, "rows": len(table)}
    path = index.paths[len(index) // 2]
    _entry, opened = step(lambda: index.open(path)[1].header)
    result["open"] = {**opened, "path": path}
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _fresh(uri: str, environment: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.scale_index", "--measure", uri]
    env = {**os.environ, **environment}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"measuring {uri} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Any) -> float:
        return float(statistics.median(get(r) for r in runs))

    first = runs[0]
    return {
        "runs": len(runs),
        "files": first["files"],
        "load_s": med(lambda r: r["load"]["s"]),
        "load_requests": first["load"]["requests"],
        "load_bytes": first["load"]["bytes"],
        "rss_imports_mb": med(lambda r: r["rss_imports_mb"]),
        "peak_rss_mb": med(lambda r: r["peak_rss_mb"]),
        "rss_after_load_mb": med(lambda r: r["rss_after_load_mb"]),
        "query_object_s": med(lambda r: r["query_object"]["s"]),
        "query_object_rows": first["query_object"]["rows"],
        "query_object_bytes": first["query_object"]["bytes"],
        "query_exptime_s": med(lambda r: r["query_exptime"]["s"]),
        "query_exptime_rows": first["query_exptime"]["rows"],
        "query_exptime_bytes": first["query_exptime"]["bytes"],
        "open_s": med(lambda r: r["open"]["s"]),
        "open_requests": first["open"]["requests"],
        "open_bytes": first["open"]["bytes"],
    }


def main(argv: list[str] | None = None) -> int:
    """Generate, save, measure; print a table and write the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_index")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per v2 case")
    parser.add_argument("--v1-repeat", type=int, default=1, help="... per v1 case (slow)")
    parser.add_argument("--no-s3", action="store_true", help="local files only")
    parser.add_argument("--measure", metavar="URI", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0

    from cloudfits.testing.seaweedfs import start_seaweedfs

    work = Path(tempfile.mkdtemp(prefix="cloudfits-scale-index-"))
    started = time.perf_counter()
    index = make_index(args.files)
    hdus = sum(len(f.hdus) for f in index.files)
    header_bytes = sum(len(h.header) for f in index.files for h in f.hdus)
    generated = time.perf_counter() - started
    _check_sample(index)
    print(
        f"{args.files} files, {hdus} HDUs, {header_bytes / 1e9:.2f} GB of header text"
        f" (generated in {generated:.1f} s)"
    )
    started = time.perf_counter()
    v2 = index.to_parquet()
    written_v2 = time.perf_counter() - started
    (work / "index.parquet").write_bytes(v2)
    del v2
    started = time.perf_counter()
    index.save(str(work / "index.json"))
    written_v1 = time.perf_counter() - started
    sizes = {p.name: p.stat().st_size for p in work.iterdir()}
    print(
        f"written: v2 {sizes['index.parquet']:,} bytes in {written_v2:.1f} s,"
        f" v1 {sizes['index.json']:,} bytes in {written_v1:.1f} s"
    )
    cases = [
        ("v2", "local", str(work / "index.parquet"), {}, args.repeat),
        ("v1", "local", str(work / "index.json"), {}, args.v1_repeat),
    ]
    server = None
    if not args.no_s3:
        server = start_seaweedfs(work / "seaweedfs")
        server.create_bucket("bench")
        client = server.client()
        for name in ("index.parquet", "index.json"):
            client.upload_file(str(work / name), "bench", name)
        environment = {
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        cases[1:1] = [("v2", "s3", "s3://bench/index.parquet", environment, args.repeat)]
        cases.append(("v1", "s3", "s3://bench/index.json", environment, args.v1_repeat))
    del index
    results: dict[str, Any] = {
        "files": args.files,
        "hdus": hdus,
        "header_bytes": header_bytes,
        "targets": TARGETS,
        "sizes": sizes,
        "write_s": {"v2": written_v2, "v1": written_v1},
        "cases": {},
    }
    try:
        for version, where, uri, environment, repeat in cases:
            if repeat < 1:
                continue
            runs = [_fresh(uri, {**environment, **_cases_env()}) for _ in range(repeat)]
            results["cases"][f"{version}-{where}"] = _median(runs)
    finally:
        if server is not None:
            server.stop()
    _print(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written {RESULTS}")
    return 0


def _cases_env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _print(results: dict[str, Any]) -> None:
    header = (
        f"{'case':<10} {'load s':>7} {'load MB':>8} {'RSS imp':>8} {'RSS peak':>9}"
        f" {'OBJECT s':>9} {'EXPTIME s':>10} {'query MB':>9} {'open s':>7} {'open kB':>8}"
        f" {'open req':>8}"
    )
    print(header)
    for name, c in results["cases"].items():
        print(
            f"{name:<10} {c['load_s']:>7.2f} {c['load_bytes'] / 1e6:>8.1f}"
            f" {c['rss_imports_mb']:>8.0f} {c['peak_rss_mb']:>9.0f}"
            f" {c['query_object_s']:>9.3f} {c['query_exptime_s']:>10.3f}"
            f" {(c['query_object_bytes'] + c['query_exptime_bytes']) / 1e6:>9.1f}"
            f" {c['open_s']:>7.3f} {c['open_bytes'] / 1e3:>8.0f} {c['open_requests']:>8}"
        )
    print(
        f"targets: load < {TARGETS['load_s']} s, peak RSS < {TARGETS['peak_rss_mb']} MB,"
        f" query < {TARGETS['query_s']} s"
    )


if __name__ == "__main__":
    sys.exit(main())
