"""``cloudfits providers``: the registered providers, their URI schemes and options."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TextIO

from ..providers.registry import get_registry
from .common import EXIT_OK, add_json_argument, write_json

__all__ = ["add_arguments", "describe_providers", "print_providers", "run"]


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def describe_providers() -> list[dict[str, Any]]:
    """Every registered provider as a dict: name, schemes, description, options."""
    return [
        {
            "name": spec.name,
            "schemes": list(spec.schemes),
            "description": spec.description,
            "options": [
                {"name": f.name, "type": str(f.type), "default": _default(f)}
                for f in dataclasses.fields(spec.config_type)
            ],
        }
        for spec in get_registry().specs()
    ]


def print_providers(stream: TextIO | None = None) -> None:
    """Print the registered providers, their schemes and options."""
    out = stream or sys.stdout
    for item in describe_providers():
        schemes = ", ".join(s + ("*" if s.endswith("+") else "") + "://" for s in item["schemes"])
        options = ", ".join(o["name"] for o in item["options"])
        out.write(f"{item['name']:<10} {schemes:<22} {item['description']}\n")
        out.write(f"{'':<10} options: {options or '(none)'}\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits providers``."""
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """List the providers."""
    if args.json:
        write_json(describe_providers())
    else:
        print_providers()
    return EXIT_OK
