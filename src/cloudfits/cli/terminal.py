"""What the commands write is text for a terminal, never instructions to it.

Header cards, names and paths come from files and indexes that anyone may have made;
a byte such as ESC (``\\x1b``) in a header comment would otherwise reach the terminal
as an escape sequence (moving the cursor, rewriting what was printed, changing the
window title). While a command runs, its standard output escapes every control
character but tab and newline as ``\\u00XX``: the form a JSON string may hold too, so
``--json`` output stays valid JSON.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["EscapingStream", "escape_controls", "escaped_stdout"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with each control character (but tab and newline) as ``\\u00XX``."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class EscapingStream:
    """A text stream that writes to ``stream`` through `escape_controls`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape_controls(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def escaped_stdout() -> Iterator[None]:
    """Standard output through `EscapingStream` inside the block."""
    before = sys.stdout
    sys.stdout = EscapingStream(before)
    try:
        yield
    finally:
        sys.stdout = before
