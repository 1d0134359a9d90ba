"""The ``cloudfits`` and ``cloudfits-index`` commands: one module per subcommand."""

from __future__ import annotations

from .main import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    build_parser,
    command_parser,
    index_main,
    index_parser,
    main,
    print_providers,
)

__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "build_parser",
    "command_parser",
    "index_main",
    "index_parser",
    "main",
    "print_providers",
]
