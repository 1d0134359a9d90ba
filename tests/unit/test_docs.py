"""The docs cover the public surface: every public name, subcommand and provider option.

These tests read the reST sources (no Sphinx build), so a missing section fails fast;
``nox -s docs`` then builds the pages with warnings as errors and runs their doctests.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import cloudfits
from cloudfits.cli import COMMANDS, command_parser, index_parser
from cloudfits.providers.registry import DEFAULT_PLUGINS, ProviderRegistry

DOCS = Path(__file__).parents[2] / "docs"
DIRECTIVE = re.compile(
    r"^\.\. (?:auto(?:function|class|exception|data)|py:(?:data|function|class))::"
    r"\s+(\S+)",
    re.MULTILINE,
)


def _rst() -> str:
    return "\n".join(p.read_text() for p in sorted(DOCS.rglob("*.rst")))


def _documented() -> set[str]:
    return set(DIRECTIVE.findall(_rst()))


@pytest.mark.parametrize("name", sorted(cloudfits.__all__))
def test_public_name_is_in_the_api_docs(name: str) -> None:
    assert f"cloudfits.{name}" in _documented(), f"docs/api.rst lacks cloudfits.{name}"


def _public_members(cls: type) -> list[tuple[str, Any]]:
    members = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, property):
            value = value.fget
        elif isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        elif hasattr(value, "func") and hasattr(value, "attrname"):  # cached_property
            value = value.func
        if inspect.isfunction(value):
            members.append((attr, value))
    return members


def _public_api() -> list[tuple[str, Any]]:
    items = []
    for name in sorted(cloudfits.__all__):
        obj = getattr(cloudfits, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            items.append((name, obj))
        if inspect.isclass(obj):
            items.extend((f"{name}.{attr}", value) for attr, value in _public_members(obj))
    return items


@pytest.mark.parametrize(("name", "obj"), _public_api(), ids=[n for n, _ in _public_api()])
def test_public_callable_has_a_docstring(name: str, obj: Any) -> None:
    assert (obj.__doc__ or "").strip(), f"cloudfits.{name} has no docstring"


def test_functions_document_their_parameters() -> None:
    """numpydoc ``Parameters`` sections name every parameter of the public functions."""
    for name in ("build_index", "load_index", "download_index", "open"):
        func = getattr(cloudfits, name)
        doc = inspect.getdoc(func) or ""
        assert "Parameters\n----------" in doc, name
        for parameter in inspect.signature(func).parameters.values():
            shown = ("**" if parameter.kind is parameter.VAR_KEYWORD else "") + parameter.name
            assert re.search(rf"^{re.escape(shown)}\b", doc, re.MULTILINE), (name, shown)


def _cli_page() -> str:
    return (DOCS / "cli.rst").read_text()


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_subcommand_has_a_section_with_its_help(command: str) -> None:
    page = _cli_page()
    assert re.search(rf"^cloudfits {command}\n-+$", page, re.MULTILINE), (
        f"docs/cli.rst has no 'cloudfits {command}' section"
    )
    assert f".. cloudfits-help:: {command}\n" in page


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_subcommand_describes_every_argument(command: str) -> None:
    parser = command_parser(command)
    assert (parser.description or "").strip()
    undocumented = [a.dest for a in _actions(parser) if not (a.help or "").strip()]
    assert not undocumented, f"cloudfits {command}: arguments without help: {undocumented}"
    assert next(c for c in COMMANDS if c.name == command).help


def test_cloudfits_index_describes_every_argument() -> None:
    undocumented = [a.dest for a in _actions(index_parser()) if not (a.help or "").strip()]
    assert not undocumented


def _builtin_specs() -> list[Any]:
    import importlib

    registry = ProviderRegistry()
    for module in DEFAULT_PLUGINS:
        importlib.import_module(module).cloudfits_register_providers(registry)
    return registry.specs()


@pytest.mark.parametrize("spec", _builtin_specs(), ids=lambda s: s.name)
def test_provider_page_covers_every_option(spec: Any) -> None:
    page = DOCS / "providers" / f"{spec.name}.rst"
    assert page.is_file(), f"no docs/providers/{spec.name}.rst"
    text = page.read_text()
    for field in dataclasses.fields(spec.config_type):
        assert f"``{field.name}``" in text, f"{page.name} does not describe {field.name}"
    for section in ("Options", "Authentication", "Requester-pays"):
        assert re.search(rf"^{section}\n-+$", text, re.MULTILINE), f"{page.name}: {section}"


def test_every_page_is_in_a_toctree() -> None:
    """Sphinx warns about orphans too; this names the page without a build."""
    pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.rst")}
    listed = {"index"}
    for path in DOCS.rglob("*.rst"):
        base = path.parent.relative_to(DOCS).as_posix()
        for block in re.findall(r"\.\. toctree::\n((?:   .*\n|\n)+)", path.read_text()):
            for entry in block.split("\n"):
                entry = entry.strip()
                if entry and not entry.startswith(":"):
                    listed.add(entry if base == "." else f"{base}/{entry}")
    assert pages - listed == set()
