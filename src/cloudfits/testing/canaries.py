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

`CanaryTests` is the base of the providers' canary test classes: the suite's file, quick
retries, and the outputs of one index round trip and one read, which every provider's
test searches (`CanaryTests.add_round_trip`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from ..errors import ObjectNotFoundError, TransientProviderError
from ..fetch.reader import ObjectReader
from ..index.build import build_index, load_index
from ..providers.registry import get_registry
from ..remote import RemoteFITS
from ..remote import open as cloudfits_open

__all__ = [
    "CLOUDFITS_LOGGERS",
    "CanaryCollector",
    "CanaryTests",
    "chain_text",
    "cli_flags",
    "foreign_index",
    "run_cli",
]

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


def cli_flags(options: Mapping[str, Any]) -> list[str]:
    """``options`` as command-line flags: ``{"account_key": k}`` is ``--account-key k``."""
    return [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def foreign_index(local: Path, data_uri: str) -> bytes:
    """An index of the directory ``local`` whose data lives at ``data_uri``, as JSON."""
    document = build_index(str(local)).to_dict()
    document["data_uri"] = data_uri
    return json.dumps(document).encode()


class CanaryTests:
    """The fixtures and steps every provider's canary tests share.

    The ``local`` fixture is a directory holding ``a.fits`` (a 40 x 30 image and a
    20-row table), which a subclass's fixtures store as ``data/a.fits``.
    """

    @pytest.fixture(scope="class")
    @classmethod
    def local(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A directory holding the suite's ``a.fits``."""
        root = tmp_path_factory.mktemp("canaries")
        image = np.arange(40 * 30, dtype=np.int16).reshape(40, 30)
        table = fits.BinTableHDU.from_columns([fits.Column("X", "J", array=np.arange(20))])
        fits.HDUList([fits.PrimaryHDU(image), table]).writeto(root / "a.fits")
        return root

    @pytest.fixture(autouse=True)
    def _quick_retries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "3")
        monkeypatch.setenv("CLOUDFITS_RETRY_BASE_DELAY", "0.01")

    def add_round_trip(
        self,
        found: CanaryCollector,
        root: str,
        saved_as: str,
        saved: Callable[[str], bytes],
        local: Path,
        options: Mapping[str, Any],
    ) -> RemoteFITS:
        """Index ``root + "/data/"``, save, load and read it, keeping what cloudfits says.

        Parameters
        ----------
        found : CanaryCollector
            Where the outputs go.
        root : str
            The store's URI of the container, without a trailing ``/``.
        saved_as : str
            The path below ``root`` the index is saved as.
        saved : callable
            ``saved(saved_as)`` is what the store holds there, read by its own SDK.
        local : pathlib.Path
            The ``local`` fixture.
        options : mapping
            The provider's options, credentials included.

        Returns
        -------
        RemoteFITS
            ``a.fits``, opened through the loaded index.
        """
        expected = fits.getdata(local / "a.fits")
        index = build_index(f"{root}/data/", **options)
        found.add("index", index.to_bytes())
        index.save(f"{root}/{saved_as}", **options)
        found.add("saved index", saved(saved_as))
        loaded = load_index(f"{root}/{saved_as}", **options)
        f = loaded.open("a.fits", **options)
        np.testing.assert_array_equal(f[0].section[3:9, 2:7], expected[3:9, 2:7])
        for thing in (index, loaded, f, f[0], f[1], f.reader, f.reader.provider, f.location):
            found.add("repr", thing)
            found.add("str", str(thing))
        found.add("pickled dask graph", pickle.dumps(dict(f[0].to_dask().__dask_graph__())))
        found.expect(
            ObjectNotFoundError,
            "missing",
            lambda: cloudfits_open(f"{root}/data/b.fits", **options),
        )
        return f

    def add_provider_outputs(
        self,
        found: CanaryCollector,
        f: RemoteFITS,
        uri: str,
        options: Mapping[str, Any],
        dead: Mapping[str, Any],
    ) -> None:
        """Keep the provider's configuration, and its errors for a missing object and no server.

        Parameters
        ----------
        found : CanaryCollector
            Where the outputs go.
        f : RemoteFITS
            The file `add_round_trip` opened.
        uri : str
            The URI of the stored ``a.fits``.
        options : mapping
            The provider's options, credentials included.
        dead : mapping
            ``options`` pointing at a port where no server listens. Only the engine's
            reads are tried there, which the engine retries (logging at DEBUG).
        """
        found.add("config", f.reader.provider.config)  # type: ignore[attr-defined]
        provider, path = get_registry().for_uri(uri, **options)
        found.expect(ObjectNotFoundError, "missing", lambda: provider.head(path + "x"))
        nobody, dead_path = get_registry().for_uri(uri, **dead)
        scheme = uri.split("://", 1)[0]
        reader = ObjectReader(nobody, dead_path, f"{scheme}://{dead_path}", size=100)
        found.expect(TransientProviderError, "no server", lambda: reader.read(0, 10))
        assert "retrying" in found.log_text  # the retries were logged at DEBUG
