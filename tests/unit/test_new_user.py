"""What a new user meets first, on local files: the commands' words, reprs, ``dir``.

Each test measures one of the small traps of the first day (issue "a new user's day",
item 14): plurals and thousands separators, fitsheader's ``-e NAME,VER``, a closed
pipe, ``info`` without an argument, ``cloudfits-index --help``, ``RemoteHDU``'s repr and
``dir(cloudfits)``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

import cloudfits
from cloudfits.cli import index_main, main
from cloudfits.fits.scan import AFTER_DATA_READ, DEFAULT_SPECULATIVE_READ
from cloudfits.providers.registry import reset_registry


def _file(path: Path) -> Path:
    primary = fits.PrimaryHDU(np.arange(100, dtype=np.int16).reshape(10, 10))
    primary.header["OBJECT"] = "M31"
    first = fits.ImageHDU(np.ones((64, 56), dtype=np.float32), name="SCI")
    second = fits.ImageHDU(np.zeros((4, 4), dtype=np.float32), name="SCI", ver=2)
    second.header["MARK"] = "second"
    table = fits.BinTableHDU.from_columns([fits.Column("X", "J", array=np.arange(200))])
    fits.HDUList([primary, first, second, table]).writeto(path)
    return path


@pytest.fixture
def one_file(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return _file(directory / "a.fits")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "cloudfits", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_one_file_is_singular_and_big_numbers_have_separators(
    one_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_uri = str(tmp_path / "idx.json")
    assert main(["index", str(one_file.parent), "--index-uri", index_uri]) == 0
    out = capsys.readouterr().out
    assert "indexed 1 file (4 HDUs)" in out, out
    assert "1 request," in out
    assert "34,560 bytes read" in out  # the whole 34,560-byte file, with its separator
    assert main(["verify", index_uri]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 file: 1 ok"
    assert main(["search", index_uri, "NAXIS == 2 and NAXIS1 == 56"]) == 0
    assert "1 HDU of 1 file matches" in capsys.readouterr().err
    index = cloudfits.load_index(index_uri)
    assert repr(index).endswith(": 1 file>")


def test_headers_takes_fitsheaders_name_comma_version(
    one_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["headers", str(one_file), "-e", "SCI,2", "-k", "MARK"]) == 0
    out = capsys.readouterr().out
    assert "HDU 2" in out
    assert "second" in out


def test_info_without_an_argument_names_only_uri(tmp_path: Path) -> None:
    done = _run(["info"], tmp_path)
    assert done.returncode == 2
    assert "required: URI" in done.stderr
    assert "PATH" not in done.stderr.splitlines()[-1]


def test_a_closed_pipe_is_no_error(one_file: Path, tmp_path: Path) -> None:
    index_uri = str(tmp_path / "idx.json")
    assert main(["index", str(one_file.parent), "--index-uri", index_uri, "-q"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudfits", "verify", index_uri, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    process.stdout.close()  # as `| head` does once it has its lines
    _, err = process.communicate(timeout=60)
    assert b"Broken pipe" not in err, err
    assert b"BrokenPipeError" not in err, err
    assert process.returncode == 0


def test_cloudfits_index_help_lists_verify(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        index_main(["--help"])
    assert "--verify" in capsys.readouterr().out


def test_remote_hdu_repr_has_name_shape_and_dtype(one_file: Path) -> None:
    f = cloudfits.open(str(one_file))
    text = repr(f["SCI"])
    assert "'SCI'" in text
    assert "(64, 56)" in text
    assert "float32" in text
    assert "(200,)" in repr(f[3])
    assert repr(f).endswith("(4 HDUs)>")


def test_dir_lists_the_api_only() -> None:
    names = dir(cloudfits)
    assert "annotations" not in names
    for internal in ("fetch", "providers", "remote", "uri", "errors"):
        assert internal not in names
    for public in ("open", "load_index", "build_index", "RemoteFITS", "stats"):
        assert public in names


ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.rst"))]


def test_public_tess_examples_need_no_requester_pays() -> None:
    """stpubdata is not requester-pays since 2021: no example asks to pay for it."""
    found = []
    for path in DOCUMENTS:
        for line in path.read_text().replace("\\\n", " ").splitlines():
            if "s3://stpubdata" in line and (
                "--requester-pays" in line or "requester_pays" in line
            ):
                found.append(f"{path.name}: {line.strip()}")
    assert not found, found
    readme = (ROOT / "README.md").read_text()
    assert "a-requester-pays-bucket" in readme  # requester-pays shown where it is needed


def test_the_install_line_is_the_one_that_works() -> None:
    """The package is not published: the docs install from a clone."""
    wrong = []
    for path in DOCUMENTS:
        for line in path.read_text().splitlines():
            if "pip install 'cloudfits[" in line or line.strip().endswith("pip install cloudfits"):
                wrong.append(f"{path.name}: {line.strip()}")
    assert not wrong, wrong
    assert "pip install -e ." in (ROOT / "docs" / "getting-started.rst").read_text()


@pytest.mark.parametrize(
    ("args", "environment"),
    [(["--price-per-gb", "-1"], {}), ([], {"CLOUDFITS_PRICE_PER_GB": "abc"})],
)
def test_a_bad_price_is_a_usage_error(
    args: list[str],
    environment: dict[str, str],
    one_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert main(["info", str(one_file), *args]) == 2
    err = capsys.readouterr().err
    assert "-1" in err or "abc" in err, err
    assert "read " not in err  # refused before any read


def test_stats_are_snapshots(one_file: Path) -> None:
    f = cloudfits.open(str(one_file))
    before = f.stats
    f[1].section[0:2, 0:3]
    after = f.stats
    assert after.requests == before.requests + 1
    assert after.bytes > before.bytes
    assert (after - before).requests == 1
    f.reset_stats()
    assert f.stats.requests == 0
    assert after.requests == before.requests + 1  # the snapshot kept its counts


def test_search_takes_hyphenated_keywords_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "dated"
    directory.mkdir()
    for name, date in (("old.fits", "2019-05-01"), ("new.fits", "2021-03-04")):
        hdu = fits.PrimaryHDU(np.zeros((2, 2), dtype=np.int16))
        hdu.header["DATE-OBS"] = date
        hdu.writeto(directory / name)
    index = cloudfits.build_index(str(directory))
    found = index.search("DATE-OBS >= '2020-01-01'")
    assert list(found["path"]) == ["new.fits"]
    assert len(index.search("`DATE-OBS` < '2020-01-01' and DATE-OBS != 'x-y'")) == 1
    index_uri = str(tmp_path / "dated.json")
    index.save(index_uri)
    assert main(["search", index_uri, "DATE-OBS >= '2020-01-01'", "--json"]) == 0
    assert "new.fits" in capsys.readouterr().out


def test_iterating_rows_reads_in_chunks_not_one_request_per_row(one_file: Path) -> None:
    f = cloudfits.open(str(one_file))
    before = f.stats
    values = [row["X"] for row in f[3]]
    spent = f.stats - before
    with fits.open(one_file) as local:
        assert values == list(local[3].data["X"])
    assert len(values) == 200
    assert spent.requests == 1, spent  # 200 rows of 4 bytes: one chunk
    planes = list(f["SCI"])
    assert len(planes) == 64
    assert planes[0].shape == (56,)


def test_the_layout_comes_from_the_stored_header_whatever_the_user_edits(
    one_file: Path,
) -> None:
    f = cloudfits.open(str(one_file))
    with fits.open(one_file) as local:
        expected = local[0].data.copy()
    f[0].header["BSCALE"] = 100
    f[0].header["BITPIX"] = 32
    f[0].header["NAXIS1"] = 3
    assert f[0].shape == (10, 10)
    assert f[0].dtype == np.int16
    assert np.array_equal(f[0].section[:, :], expected)  # no IndexFormatError either
    assert f[0].header["BSCALE"] == 100  # the user's copy keeps the edit
    assert "BSCALE" not in f[0].stored_header


def test_remote_fits_behaves_like_an_hdulist(one_file: Path) -> None:
    f = cloudfits.open(str(one_file))
    assert "SCI" in f
    assert ("SCI", 2) in f
    assert "sci" in f
    assert 3 in f
    assert "NOPE" not in f
    assert 9 not in f
    assert [h.number for h in f[1:3]] == [1, 2]
    with pytest.raises(AttributeError, match=r"section\[\.\.\.\]"):
        _ = f[1].data
    assert cloudfits.getheader(str(one_file), "SCI")["EXTNAME"] == "SCI"
    with fits.open(one_file) as local:
        assert np.array_equal(cloudfits.getdata(str(one_file)), local[0].data)
        assert np.array_equal(cloudfits.getdata(str(one_file), ("SCI", 2)), local[2].data)
        assert list(cloudfits.getdata(str(one_file), 3)["X"]) == list(local[3].data["X"])


def test_an_unreachable_endpoint_fails_fast_naming_its_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unreachable-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unreachable-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    reset_registry()
    started = time.monotonic()
    with pytest.raises(cloudfits.ProviderError, match="cannot connect") as caught:
        cloudfits.open("s3://b/k.fits", endpoint_url=endpoint)
    assert time.monotonic() - started < 20  # was 42 s: every layer retried
    assert endpoint in str(caught.value)
    assert main(["info", "s3://b/k.fits", "--endpoint-url", endpoint]) == 1
    assert "--endpoint-url URL" in capsys.readouterr().err
    reset_registry()


def test_a_file_cut_inside_its_last_padding_warns_as_astropy_does(tmp_path: Path) -> None:
    path = tmp_path / "cut.fits"
    fits.PrimaryHDU(np.arange(100, dtype=np.int16)).writeto(path)  # 200 data bytes
    with path.open("r+b") as out:
        out.truncate(2880 + 1000)  # the data whole, its padding cut
    # astropy's category and words ("File may have been truncated"), naming the file.
    with pytest.warns(AstropyUserWarning, match=r"cut\.fits: File may have been truncated"):
        f = cloudfits.open(str(path))
    assert f[0].section[:5].tolist() == [0, 1, 2, 3, 4]
    with pytest.warns(AstropyUserWarning, match="File may have been truncated"):
        cloudfits.build_index(str(path))


@pytest.mark.parametrize("name", ["idx.txt", "idx.parquet.gz", "idx"])
def test_an_index_name_of_no_format_is_a_usage_error_before_any_read(
    name: str, one_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = cloudfits.stats.copy()
    code = main(["index", str(one_file.parent), "--index-uri", str(tmp_path / name)])
    assert code == 2
    assert (cloudfits.stats - before).requests == 0
    assert ".json.gz" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_speculative_read_is_a_flag_of_the_command_line(
    one_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spent = {}
    for read in ("2880", "46080"):
        uri = str(tmp_path / f"s{read}.json")
        args = ["index", str(one_file.parent), "--index-uri", uri, "--json"]
        assert main([*args, "--speculative-read", read]) == 0
        report = json.loads(capsys.readouterr().out)
        spent[read] = (report["requests"], report["bytes"])
        assert (
            cloudfits.load_index(uri).files[0].hdus
            == cloudfits.build_index(str(one_file)).files[0].hdus
        )
    # One block at a time: a request per header; 16 blocks: the 4 headers in one read.
    assert spent["2880"][0] == 4, spent
    assert spent["46080"][0] == 1, spent
    assert main(["index", str(one_file.parent), "--dry-run", "--speculative-read", "0"]) == 2
    assert main(["index", str(one_file.parent), "--dry-run", "--speculative-read", "5760"]) == 0
    assert "5,760 bytes per object" in capsys.readouterr().out


def test_a_verify_warning_is_printed_once(tmp_path: Path) -> None:
    header = fits.PrimaryHDU(np.zeros((4, 4), dtype=np.int16)).header.tostring()
    bad = header.replace("EXTEND  =                    T", "BADCARD = 12 3".ljust(30), 1)
    path = tmp_path / "bad.fits"
    path.write_bytes(bad.encode() + bytes(2880))
    done = _run(["headers", str(path)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Card 'BADCARD' is not FITS standard") == 1, done.stderr


def test_indexing_many_small_hdus_reads_headers_not_data(tmp_path: Path) -> None:
    directory = tmp_path / "seven"
    directory.mkdir()
    rng = np.random.default_rng(1)
    total = 0
    for k in range(20):
        extensions = [
            fits.ImageHDU(np.zeros((int(rng.integers(20, 60)), 256), np.float32), name=f"E{i}")
            for i in range(6)
        ]
        path = directory / f"f{k:03d}.fits"
        fits.HDUList([fits.PrimaryHDU(), *extensions]).writeto(path)
        total += path.stat().st_size
    stats = cloudfits.ReadStats()
    index = cloudfits.build_index(str(directory), stats=stats)
    # The first read of each object, then the cost model's read where a header
    # follows data (before: 46,080 bytes there, 4.1 MB of these 5.5 MB in all).
    assert AFTER_DATA_READ < DEFAULT_SPECULATIVE_READ
    assert stats.bytes < total / 2.5, (stats, total)
    with fits.open(directory / "f007.fits") as local:
        layouts = index.files[7].hdus
        assert [lay.data_offset for lay in layouts] == [h._data_offset for h in local]


def test_first_reads_follow_the_headers_of_the_objects_scanned_before(tmp_path: Path) -> None:
    """Trap 4: once objects are scanned, an object's first read covers the headers
    they showed at their start, and a read after data their longest later header,
    instead of 46,080 bytes that are mostly data."""
    directory = tmp_path / "seven"
    directory.mkdir()
    ideal = 0
    for k in range(30):
        extensions = [
            fits.ImageHDU(np.zeros((20 + k + 7 * i, 64), np.float32), name=f"E{i}")
            for i in range(6)
        ]
        path = directory / f"f{k:03d}.fits"
        fits.HDUList([fits.PrimaryHDU(), *extensions]).writeto(path)
        with fits.open(path) as local:
            ideal += sum(h._data_offset - h._header_offset for h in local)
    stats = cloudfits.ReadStats()
    index = cloudfits.build_index(str(directory), stats=stats, concurrency=1)
    # Each object after the first: one read for the primary and first extension
    # headers, one per later header, each of exactly the header's bytes.
    assert stats.requests <= 6 * 30 + 1, stats
    assert stats.bytes <= ideal + DEFAULT_SPECULATIVE_READ + 5 * AFTER_DATA_READ, (stats, ideal)
    for entry in index.files:
        with fits.open(directory / entry.path) as local:
            assert [(h.header_offset, h.data_offset) for h in entry.hdus] == [
                (h._header_offset, h._data_offset) for h in local
            ]


def _hostile_header_file(path: Path, *evil: str) -> Path:
    """A FITS file whose header carries the cards ``evil`` (terminal escape sequences)."""
    primary = fits.PrimaryHDU(np.zeros((2, 2), np.int16)).header.tostring()
    cards = [primary[i : i + 80] for i in range(0, len(primary), 80)]
    end = cards.index("END".ljust(80))
    cards[end:end] = [card.ljust(80) for card in evil]
    text = "".join(cards)
    text += " " * (-len(text) % 2880)
    path.write_bytes(text.encode("latin-1") + bytes(2880))
    return path


def test_control_characters_from_a_header_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _hostile_header_file(tmp_path / "evil.fits", "COMMENT \x1b]0;owned\x07 \x1b[2J\rgone")
    for command in (["headers", str(path)], ["info", str(path)], ["headers", str(path), "--json"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(command) == 0
        out = capsys.readouterr().out
        assert not any(ord(c) < 32 and c not in "\t\n" for c in out), (command, out)
        if command[-1] == "--json":
            cards = json.loads(out)[0]["cards"]
            assert any("\x1b]0;owned" in str(c["value"]) for c in cards)  # the data kept
        elif command[0] == "headers":
            assert "\\u001b]0;owned\\u0007" in out
            assert "\\u000dgone" in out
    # A value astropy refuses to show: the command fails as astropy does, and its
    # message shows the characters escaped.
    bad = _hostile_header_file(tmp_path / "bad.fits", "OBJECT  = 'M31\x1b[31m'")
    main(["headers", str(bad)])
    shown = capsys.readouterr()
    assert not any(ord(c) < 32 and c not in "\t\n" for c in shown.out + shown.err), shown


def test_predictions_stop_where_objects_of_one_size_differ(tmp_path: Path) -> None:
    """Trap 4, same-sized objects: images of varying shapes often share a file size but
    not a layout. Each failed prediction costs a read; after a few, the scan stops
    predicting and reads each object's headers only."""
    directory = tmp_path / "same-size"
    directory.mkdir()
    for k in range(40):
        # 6 image extensions of whole blocks (5 rows of 576 bytes) whose heights sum
        # to 400 rows: one file size, many layouts.
        heights = [50 + 5 * ((k + i) % 7 - 3) for i in range(5)]
        heights.append(400 - sum(heights))
        extensions = [
            fits.ImageHDU(np.zeros((h, 144), np.float32), name=f"E{i}")
            for i, h in enumerate(heights)
        ]
        fits.HDUList([fits.PrimaryHDU(), *extensions]).writeto(directory / f"f{k:03d}.fits")
    sizes = {p.stat().st_size for p in directory.iterdir()}
    assert len(sizes) == 1
    stats = cloudfits.ReadStats()
    index = cloudfits.build_index(str(directory), stats=stats, concurrency=1)
    # A scan: one read for the primary and first extension headers, one per later
    # header; at most three failed predictions of one read each come on top.
    assert stats.requests <= 40 * 6 + 3 * 6, stats
    for entry in index.files:
        with fits.open(directory / entry.path) as local:
            assert [(h.header_offset, h.data_offset) for h in entry.hdus] == [
                (h._header_offset, h._data_offset) for h in local
            ]


def test_a_script_that_opens_a_file_and_ends_prints_nothing(one_file: Path) -> None:
    """``cloudfits.open`` starts pool threads in the background while its first answers
    travel; a script that ends right after it must end quietly (no traceback of a
    thread that met the interpreter's shutdown)."""
    code = f"import cloudfits\ncloudfits.open({str(one_file)!r})\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
