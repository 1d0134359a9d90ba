"""The ``cloudfits`` command as a user runs it: subprocesses against the local S3 server.

Outputs are compared with astropy's own ``fitsinfo`` and ``fitsheader`` run on the
same files, and with astropy reading them.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import warnings
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from astropy.io import fits

from cloudfits.cli import COMMANDS
from cloudfits.cli.pricing import estimated_cost, format_usd
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

from ..conftest import CORPUS, CORPUS_DIR, TESS_FRAMES

INDEX_BUCKET = "tess-fits-cloud-index"
CLOUDFITS = [sys.executable, "-m", "cloudfits"]
FITSHEADER = "from astropy.io.fits.scripts.fitsheader import main; main()"
CLOUDFITS_INDEX = "from cloudfits.cli import index_main; raise SystemExit(index_main())"
# astropy rewrites this invalid file's header when it opens it (NAXIS 0 becomes 1).
ASTROPY_REWRITES = {"invalid/group_invalid.fits"}


def cloudfits(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cloudfits ARGV`` with the test environment (AWS_* point locally)."""
    return subprocess.run(
        [sys.executable, "-m", "cloudfits", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _summary(stderr: str) -> tuple[int, int]:
    match = re.search(r"cloudfits: read (\d+) requests?, ([\d,]+) bytes", stderr)
    assert match, stderr
    return int(match.group(1)), int(match.group(2).replace(",", ""))


@pytest.fixture(scope="module")
def corpus_index(corpus_uri: str) -> str:
    """The whole corpus indexed with the command, remotely (headers only)."""
    uri = f"{corpus_uri.rsplit('/', 1)[0]}/cli-index.json.gz"
    done = cloudfits("index", corpus_uri + "/", "--index-uri", uri)
    assert done.returncode == 0, done.stderr
    return uri


# ------------------------------------------------------------------ help, exit codes


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_subcommand_has_help(command: str) -> None:
    done = cloudfits(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: cloudfits {command}")
    assert "--help" in done.stdout


def test_usage_errors_exit_2() -> None:
    assert cloudfits().returncode == 2
    assert cloudfits("no-such-command").returncode == 2
    assert cloudfits("info", "--no-such-flag", "x.fits").returncode == 2
    done = cloudfits("info", "a.fits", "b.fits")  # PATHs follow an index only
    assert done.returncode == 2
    assert "index" in done.stderr


def test_version() -> None:
    done = cloudfits("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("cloudfits ")


def test_missing_object_exits_1_naming_it(s3_server: S3Server, corpus_uri: str) -> None:
    uri = f"{corpus_uri}/no-such-file.fits"
    done = cloudfits("info", uri)
    assert done.returncode == 1
    assert uri in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------ info


def _astropy_info(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            out = io.StringIO()
            hdul.info(out)
    return out.getvalue().splitlines()[1:]  # without the Filename line


def _info_blocks(stdout: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for block in stdout.strip("\n").split("\n\n"):
        first, *rest = block.splitlines()
        assert first.startswith("Filename: ")
        blocks[first.removeprefix("Filename: ")] = rest
    return blocks


def test_info_from_an_index_is_fitsinfo(corpus_uri: str, corpus_index: str) -> None:
    done = cloudfits("info", corpus_index)
    assert done.returncode == 0, done.stderr
    blocks = _info_blocks(done.stdout)
    assert sorted(blocks) == sorted(f"{corpus_uri}/{rel}" for rel in CORPUS)
    for rel in CORPUS:
        if rel not in ASTROPY_REWRITES:
            assert blocks[f"{corpus_uri}/{rel}"] == _astropy_info(CORPUS_DIR / rel), rel
    # Only the index itself was read.
    assert _summary(done.stderr)[0] == 1


def test_info_of_an_object_scans_its_headers(tess_bucket: str, tess_cube: Path) -> None:
    uri = f"{tess_bucket}/{tess_cube.name}"
    done = cloudfits("info", uri)
    assert done.returncode == 0, done.stderr
    assert _info_blocks(done.stdout) == {uri: _astropy_info(tess_cube)}
    requests, nbytes = _summary(done.stderr)
    assert 1 <= requests <= 3  # one read per HDU at most
    assert nbytes < tess_cube.stat().st_size / 4


def test_info_of_a_file_in_an_index(corpus_uri: str, corpus_index: str) -> None:
    uri = f"{corpus_uri}/tb.fits"
    by_path = cloudfits("info", corpus_index, "tb.fits", "--json")
    by_uri = cloudfits("info", uri, "--index", corpus_index, "--json")
    assert by_path.returncode == by_uri.returncode == 0, by_path.stderr + by_uri.stderr
    assert json.loads(by_path.stdout) == json.loads(by_uri.stdout)
    (described,) = json.loads(by_path.stdout)
    assert described["file"] == uri
    assert described["size"] == (CORPUS_DIR / "tb.fits").stat().st_size
    with fits.open(CORPUS_DIR / "tb.fits") as hdul:
        assert [h["cards"] for h in described["hdus"]] == [len(h.header) for h in hdul]
        assert [h["header_offset"] for h in described["hdus"]] == [
            h.fileinfo()["hdrLoc"] for h in hdul
        ]
        assert [h["data_offset"] for h in described["hdus"]] == [
            h.fileinfo()["datLoc"] for h in hdul
        ]
        assert [h["data_size"] for h in described["hdus"]] == [h.size for h in hdul]
    missing = cloudfits("info", corpus_index, "no-such.fits")
    assert missing.returncode == 1
    assert "no-such.fits" in missing.stderr


# --------------------------------------------------------------------- headers


def _astropy_fitsheader(*argv: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from astropy.io.fits.scripts.fitsheader import main; main()",
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _cards(stdout: str) -> list[str]:
    """The output without the ``# HDU n in FILE:`` lines (file names differ)."""
    return [line.rstrip() for line in stdout.splitlines() if not line.startswith("# HDU ")]


@pytest.mark.parametrize(
    "selection",
    [[], ["-e", "1"], ["-e", "SCI"], ["-k", "NAXIS*"], ["-e", "0", "-k", "BITPIX", "-k", "DATE"]],
)
def test_headers_match_fitsheader(corpus_uri: str, selection: list[str]) -> None:
    rel = "test0.fits"
    ours = cloudfits("headers", f"{corpus_uri}/{rel}", *selection)
    assert ours.returncode == 0, ours.stderr
    theirs = _astropy_fitsheader(str(CORPUS_DIR / rel), *selection)
    assert _cards(ours.stdout) == _cards(theirs)
    hdus = [line for line in ours.stdout.splitlines() if line.startswith("# HDU ")]
    assert all(line.endswith(f" in {corpus_uri}/{rel}:") for line in hdus)


def test_headers_across_an_index_as_json(corpus_uri: str, corpus_index: str) -> None:
    done = cloudfits("headers", corpus_index, "-k", "NAXIS", "-k", "BITPIX", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    seen = set()
    for item in found:
        rel = item["file"].removeprefix(corpus_uri + "/")
        seen.add(rel)
        if rel in ASTROPY_REWRITES:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.getheader(CORPUS_DIR / rel, item["hdu"])
        assert {c["keyword"]: c["value"] for c in item["cards"]} == {
            k: header[k] for k in ("NAXIS", "BITPIX")
        }
    assert seen == set(CORPUS)
    assert _summary(done.stderr)[0] == 1  # the index only


def test_headers_nothing_matched_exits_1(corpus_uri: str) -> None:
    done = cloudfits("headers", f"{corpus_uri}/tb.fits", "-k", "NO_SUCH_KEY")
    assert done.returncode == 1
    assert "NO_SUCH_KEY" in done.stderr


# ------------------------------------------------------------------- providers


def test_providers_json() -> None:
    done = cloudfits("providers", "--json")
    assert done.returncode == 0, done.stderr
    providers = {p["name"]: p for p in json.loads(done.stdout)}
    assert {"file", "s3", "spaces", "https"} <= set(providers)
    s3_options = {o["name"]: o["default"] for o in providers["s3"]["options"]}
    assert s3_options["requester_pays"] is False
    assert providers["s3"]["schemes"] == ["s3"]


# ------------------------------------------------------------ index, cost, dry run


def test_index_requester_pays_prints_the_cost(tess_bucket: str, s3_server: S3Server) -> None:
    uri = f"s3://{INDEX_BUCKET}/cli-cost.json"
    done = cloudfits(
        "index", tess_bucket + "/", "--index-uri", uri, "--requester-pays", "--json",
        env={"CLOUDFITS_PRICE_PER_GB": "1000"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files"] == 1
    assert report["hdus"] == 3
    requests, nbytes = _summary(done.stderr)
    assert (requests, nbytes) == (report["requests"], report["bytes"])
    cost = estimated_cost(nbytes, requests, 1000, 0.0004)
    assert f"estimated requester-pays cost {format_usd(cost)} (at $1000/GB" in done.stderr
    # Without requester-pays there is no cost line.
    plain = cloudfits("index", tess_bucket + "/", "--index-uri", uri)
    assert plain.returncode == 0, plain.stderr
    assert "cost" not in plain.stderr
    assert "indexed 1 file (3 HDUs)" in plain.stdout


def test_price_from_the_option_and_bad_prices(tess_bucket: str, s3_server: S3Server) -> None:
    uri = f"s3://{INDEX_BUCKET}/cli-price.json"
    done = cloudfits(
        "index", tess_bucket + "/", "--index-uri", uri, "--requester-pays",
        "--price-per-gb", "0", "--price-per-1000-requests", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "estimated requester-pays cost $0 (at $0/GB and $0 per 1,000 requests)" in done.stderr
    bad = cloudfits("index", tess_bucket + "/", "--index-uri", uri, "--price-per-gb", "-1")
    assert bad.returncode == 2
    env_bad = cloudfits(
        "index", tess_bucket + "/", "--index-uri", uri, env={"CLOUDFITS_PRICE_PER_GB": "cheap"}
    )
    assert env_bad.returncode == 2
    assert "CLOUDFITS_PRICE_PER_GB" in env_bad.stderr


def test_dry_run_lists_and_reads_nothing(
    s3_server: S3Server, corpus_uri: str, tess_bucket: str
) -> None:
    uri = f"s3://{INDEX_BUCKET}/never-written.json"
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        done = cloudfits(
            "index", corpus_uri + "/", "--index-uri", uri, "--dry-run", "--json",
            "--requester-pays", "--endpoint-url", proxy.url,
        )  # fmt: skip
        records = proxy.records
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["count"] == len(CORPUS)
    assert sorted(o["path"] for o in report["objects"]) == sorted(
        f"corpus/astropy/data/{rel}" for rel in CORPUS
    )
    assert report["data_bytes"] == sum((CORPUS_DIR / rel).stat().st_size for rel in CORPUS)
    assert report["min_requests"] == len(CORPUS)
    assert report["min_cost_usd"] > 0
    assert report["index_uri"] == uri
    # Listing only: no ranged GET, no HEAD, no PUT.
    assert records
    assert all(r.method == "GET" and "list-type=2" in r.target for r in records)
    assert all("range" not in r.headers for r in records)
    with pytest.raises(botocore.exceptions.ClientError):
        s3_server.client().head_object(Bucket=INDEX_BUCKET, Key="never-written.json")
    text = cloudfits("index", corpus_uri + "/", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert f"would index {len(CORPUS)} objects" in text.stdout
    assert "nothing was read or written" in text.stdout


def _run_on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run a command with standard error on a pseudo-terminal; return what it showed."""
    leader, follower = pty.openpty()
    # A new terminal has 0 columns, where tqdm draws nothing: give it a usual size.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=follower, env=os.environ.copy()
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_progress_bar_only_on_a_terminal(tess_bucket: str, s3_server: S3Server) -> None:
    uri = f"s3://{INDEX_BUCKET}/cli-progress.json"
    argv = [*CLOUDFITS, "index", tess_bucket + "/", "--index-uri", uri]
    code, terminal = _run_on_a_terminal(argv)
    assert code == 0, terminal
    assert re.search(r"indexing: .*/1 ", terminal), terminal
    code, quiet = _run_on_a_terminal([*argv, "--quiet"])
    assert code == 0, quiet
    assert quiet.strip() == ""
    piped = cloudfits("index", tess_bucket + "/", "--index-uri", uri)
    assert piped.returncode == 0, piped.stderr
    assert "indexing" not in piped.stderr


# ------------------------------------------------------------- the seed tutorial


def test_seed_tutorial_commands(tess_bucket: str, tess_cube: Path) -> None:
    """The tutorial's indexing command, then info and headers of what it indexed."""
    done = subprocess.run(
        [
            sys.executable, "-c", CLOUDFITS_INDEX,
            "--provider", "s3", "--index-bucket-name", INDEX_BUCKET,
            "--fits-files-directory", str(tess_cube.parent), "--data-bucket-path", tess_bucket,
        ],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    index = f"s3://{INDEX_BUCKET}/cloudfits-index.json"
    info = cloudfits("info", index, "--json")
    assert info.returncode == 0, info.stderr
    (described,) = json.loads(info.stdout)
    assert described["file"] == f"{tess_bucket}/{tess_cube.name}"
    assert described["hdus"][1]["dimensions"] == [2, TESS_FRAMES, 64, 64]
    headers = cloudfits("headers", index, "-e", "1", "-k", "NAXIS4")
    assert headers.returncode == 0, headers.stderr
    assert re.search(r"^NAXIS4  =\s+64$", headers.stdout, re.MULTILINE), headers.stdout


READ_WITH_PROGRESS = """
import sys
import cloudfits
from cloudfits.cli.common import read_progress
f = cloudfits.open(sys.argv[1], max_concurrency=1, max_part=4096)
with read_progress(f.stats, f[1].size, desc="cutout"):
    f[1].section[...]
print(f.stats.bytes, file=sys.stderr)
"""


def test_read_progress_shows_the_bytes_of_a_large_read(tess_bucket: str, tess_cube: Path) -> None:
    """The bar that cutout and verify use follows a file's counters while it reads."""
    uri = f"{tess_bucket}/{tess_cube.name}"
    code, terminal = _run_on_a_terminal([sys.executable, "-c", READ_WITH_PROGRESS, uri])
    assert code == 0, terminal
    with fits.open(tess_cube) as hdul:
        data_size = hdul[1].size
    assert re.search(r"cutout: .*B/", terminal), terminal
    # The last line is the total: the image's bytes plus the header scan (three HDUs).
    total = int(terminal.strip().splitlines()[-1].strip())
    assert data_size < total <= data_size + 3 * 46080
