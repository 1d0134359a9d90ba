"""The ``cloudfits`` and ``cloudfits-index`` commands: one module per subcommand."""

from __future__ import annotations

from . import main as _main
from .main import *  # noqa: F403  (the names of `cloudfits.cli.main.__all__`)

__all__ = list(_main.__all__)
