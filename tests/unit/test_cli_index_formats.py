"""``cloudfits info/headers/verify`` take an index in every format, Parquet included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.cli import command_parser, main
from cloudfits.cli.targets import is_index_uri
from cloudfits.index.formats import index_suffixes


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    primary = fits.PrimaryHDU(np.arange(20, dtype=">i2").reshape(4, 5))
    primary.header["OBSERVER"] = "Hubble"
    fits.HDUList([primary, fits.ImageHDU(np.zeros((2, 3)), name="SCI")]).writeto(data / "a.fits")
    index = cloudfits.build_index(str(data))
    for suffix in index_suffixes():
        index.save(str(tmp_path / f"index{suffix}"))
    return tmp_path


def test_index_names_are_recognised() -> None:
    for name in ("s3://b/i.json", "i.JSON.GZ", "gs://b/i.parquet", "https://h/i.parquet?x=1"):
        assert is_index_uri(name)
    assert not is_index_uri("s3://b/a.fits")


@pytest.mark.parametrize("suffix", index_suffixes())
def test_info_headers_verify_read_each_index_format(
    indexed: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    index_uri = str(indexed / f"index{suffix}")
    assert main(["info", index_uri, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in described[0]["hdus"]] == ["PRIMARY", "SCI"]
    assert main(["headers", index_uri, "a.fits", "--keyword", "OBSERVER", "--json"]) == 0
    assert "Hubble" in capsys.readouterr().out
    assert main(["verify", index_uri, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["status"] for f in report["files"]] == ["ok"]


@pytest.mark.parametrize("command", ["info", "headers", "verify"])
def test_help_lists_parquet(command: str) -> None:
    assert ".parquet" in command_parser(command).format_help()
