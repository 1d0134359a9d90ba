"""Canary credentials: everything cloudfits says during a test, searched for secrets.

A provider's test suite puts distinctive secrets wherever a user puts credentials,
hands what cloudfits produces to a `CanaryCollector` (indexes, exceptions with their
whole chain, ``repr`` of objects, pickled dask graphs, command output) and calls
`CanaryCollector.check` at the end, which also searches the DEBUG records of
cloudfits' own loggers (``cloudfits`` and the plugins' ``cloudfits_*``).

Examples
--------
>>> with CanaryCollector(["my-canary-secret"]) as found:  # doctest: +SKIP
...     found.add("index", index.to_bytes())
...     found.expect(ObjectNotFoundError, "missing", lambda: cloudfits.open(uri))
>>> found.check()  # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["CLOUDFITS_LOGGERS", "CanaryCollector", "chain_text", "run_cli"]

#: The loggers of cloudfits and of its plugins.
CLOUDFITS_LOGGERS = ("cloudfits", "cloudfits_azure", "cloudfits_gcs", "cloudfits_libcloud")


def chain_text(error: BaseException) -> str:
    """The traceback of ``error`` and of every exception chained to it, with their reprs.

    The chain is Python's: each exception's ``__cause__``, else its ``__context__``
    unless ``raise ... from None`` suppressed it.
    """
    parts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [repr(current), str(current)]
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return "\n".join(parts)


class CanaryCollector:
    """What cloudfits said, and where: no canary may be in any of it.

    Parameters
    ----------
    canaries : iterable of str
        The secrets to search for.
    """

    def __init__(self, canaries: Iterable[str]) -> None:
        self.canaries = tuple(canaries)
        self.texts: list[tuple[str, str]] = []
        self._log = io.StringIO()
        self._handler = logging.StreamHandler(self._log)
        self._handler.setLevel(logging.DEBUG)
        self._saved: list[tuple[logging.Logger, int]] = []

    def __enter__(self) -> CanaryCollector:
        for name in CLOUDFITS_LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for logger, level in self._saved:
            logger.removeHandler(self._handler)
            logger.setLevel(level)
        self._saved.clear()

    def add(self, what: str, value: Any) -> None:
        """Keep ``value`` (an exception, bytes, text or any object, by ``repr``)."""
        if isinstance(value, BaseException):
            text = chain_text(value)
        elif isinstance(value, bytes):
            text = value.decode("latin-1")
        else:
            text = value if isinstance(value, str) else repr(value)
        self.texts.append((what, text))

    def expect(self, error: type[BaseException], what: str, call: Callable[[], Any]) -> None:
        """Call ``call``, which must raise ``error``, and keep the exception."""
        try:
            call()
        except error as caught:
            self.add(what, caught)
            return
        raise AssertionError(f"{what}: {error.__name__} was not raised")

    def leaks(self) -> list[tuple[str, str]]:
        """``(where, canary)`` for every canary found so far, log records included."""
        texts = [*self.texts, ("DEBUG log records", self._log.getvalue())]
        return [(what, c) for what, text in texts for c in self.canaries if c in text]

    def check(self) -> int:
        """Assert that no canary was found; return how many outputs were searched."""
        found = self.leaks()
        assert not found, found
        return len(self.texts) + 1

    @property
    def log_text(self) -> str:
        """The records of cloudfits' loggers so far."""
        return self._log.getvalue()


def run_cli(
    args: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m cloudfits ARGS`` with this interpreter's path, and ``env`` added."""
    full = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "cloudfits", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
