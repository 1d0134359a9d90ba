"""``.. cloudfits-help:: NAME``: the ``--help`` text of a ``cloudfits`` subcommand.

The text comes from the parser itself, so the page cannot drift from the command.
``.. cloudfits-help::`` without a name shows ``cloudfits --help``; the name
``cloudfits-index`` shows that command's help.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

HELP_WIDTH = "88"


def _help_text(name: str | None) -> str:
    from cloudfits import cli

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps to the terminal width
    try:
        parser: argparse.ArgumentParser
        if name is None:
            parser = cli.build_parser()
        elif name == "cloudfits-index":
            parser = cli.index_parser()
        else:
            parser = cli.command_parser(name)
        return parser.format_help()
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


class CloudfitsHelp(SphinxDirective):
    """Insert a subcommand's ``--help`` output as a literal block."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0] if self.arguments else None
        try:
            text = _help_text(name)
        except KeyError as err:
            raise self.error(f"cloudfits-help: {err.args[0]}") from err
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cloudfits-help", CloudfitsHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
