"""The command line's provider flags are made from each provider's config dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from cloudfits.cli import COMMANDS, command_parser, index_parser, main
from cloudfits.cli.common import add_provider_arguments, provider_flags
from cloudfits.cli.provider_flags import flag_table
from cloudfits.providers.registry import get_registry

# The commands whose targets are read through a provider.
WITH_PROVIDERS = ["index", "info", "headers", "cutout", "verify", "search"]


def _sections(help_text: str) -> dict[str, str]:
    """``--help`` cut at the group titles: title -> the group's text."""
    parts = re.split(r"^(\S[^\n]*):\n", help_text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _option(name: str) -> str:
    return next(f.option for f in flag_table() if f.name == name)


@pytest.mark.parametrize("command", WITH_PROVIDERS)
def test_help_lists_every_option_under_its_provider(command: str) -> None:
    sections = _sections(command_parser(command).format_help())
    for spec in get_registry().specs():
        text = sections[f"{spec.name} provider options"]
        for field in dataclasses.fields(spec.config_type):
            assert re.search(rf"{re.escape(_option(field.name))}\b", text), (spec.name, field.name)


def test_every_command_that_reads_has_the_flags() -> None:
    for command in [c.name for c in COMMANDS if c.name in WITH_PROVIDERS]:
        options = command_parser(command)._option_string_actions
        for flag in ("--billing-project", "--account-name", "--account-url", "--endpoint-url"):
            assert flag in options, (command, flag)
    seed = index_parser()._option_string_actions
    for flag in (
        "--provider",
        "--index-bucket-name",
        "--fits-files-directory",
        "--data-bucket-path",
        "--requester-pays",
        "--region",
        "--profile",
        "--anonymous",
    ):
        assert flag in seed, flag


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_provider_arguments(parser)
    return parser.parse_args(list(argv))


def test_flag_types_follow_the_config_fields() -> None:
    args = _parse(
        "--max-pool-connections", "8",
        "--timeout", "2.5",
        "--no-verify",
        "--no-presigned-reads",
        "--requester-pays",
        "--headers", "Authorization=Bearer t",
        "--headers", "X-Trace=1",
        "--billing-project", "payer",
    )  # fmt: skip
    assert provider_flags(args) == {
        "max_pool_connections": 8,
        "timeout": 2.5,
        "verify": False,
        "presigned_reads": False,
        "requester_pays": True,
        "headers": {"Authorization": "Bearer t", "X-Trace": "1"},
        "billing_project": "payer",
    }
    assert provider_flags(_parse()) == {}


def test_a_bad_value_names_the_flag_not_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _parse("--headers", "Bearer-SECRET-TOKEN")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--headers: expected KEY=VALUE" in err
    assert "SECRET-TOKEN" not in err


@pytest.fixture
def local_fits(tmp_path: Path) -> Path:
    path = tmp_path / "a.fits"
    fits.PrimaryHDU(np.zeros((2, 3), dtype=">i2")).writeto(path)
    return path


def test_an_option_the_provider_lacks_is_a_usage_error(
    local_fits: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(local_fits), "--billing-project", "P"]) == 2
    err = capsys.readouterr().err
    assert "--billing-project does not apply to the file provider (file takes --root)" in err


def test_secret_flags_are_never_echoed(
    local_fits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "AZ-KEY-5ecret-VALUE"
    code = main(["info", str(local_fits), "--account-key", secret, "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "--account-key does not apply to the file provider" in err
    assert secret not in out + err
    index = tmp_path / "index.json"
    code = main(["index", str(local_fits.parent), "--index-uri", str(index), "--sas-token", secret])
    out, err = capsys.readouterr()
    assert code == 2
    assert secret not in out + err
    assert not index.exists()


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_a_command_line_parses_alike_with_only_its_own_subcommand_built(command: str) -> None:
    """``main`` builds only the subcommand it runs; what it parses, and the help of the
    command and of ``cloudfits``, are those of the whole parser."""
    from cloudfits.cli.main import _build, _command_of

    (full, commands), (lean, lean_commands) = _build(), _build(_command_of([command, "-h"]))
    assert _command_of(["--quiet", command, "x"]) == command
    assert lean.format_help() == full.format_help()
    assert lean_commands[command].format_help() == commands[command].format_help()
    assert _command_of(["nosuch"]) is None
    assert _command_of(["--version"]) is None
