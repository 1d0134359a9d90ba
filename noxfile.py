"""Sessions: lint, tests, tests_plugin, docs, build, demo, bench.

``nox -s tests`` is what CI runs; extra arguments go to pytest (``nox -s tests -- -k s3``).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PLUGINS = (
    sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
    if (ROOT / "plugins").is_dir()
    else []
)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy."""
    session.install("ruff>=0.6", "mypy>=1.10", "-e", ".[test]")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, against real local servers."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
@nox.parametrize("plugin", PLUGINS)
def tests_plugin(session: nox.Session, plugin: str) -> None:
    """One provider plugin's own tests."""
    session.install("-e", ".[test]", "-e", f"plugins/{plugin}[test]")
    session.run("pytest", f"plugins/{plugin}/tests", *session.posargs)


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs, warnings as errors."""
    session.install("-e", ".", "sphinx>=7")
    session.run("sphinx-build", "-W", "-b", "html", "docs", "docs/_build/html")


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build the sdist and wheel."""
    session.install("build")
    session.run("python", "-m", "build", "--outdir", "dist")


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """The TESS tutorial against a local S3 server (no cloud account)."""
    session.install("-e", ".[demo]")
    session.run("cloudfits", "demo", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """cloudfits against astropy+fsspec and astrocut, at 0 and 20 ms of added latency.

    Writes ``benchmarks/results/bench.{json,rst,png}``; arguments go to
    ``python -m benchmarks.run`` (``nox -s bench -- --runs 5 --latency 50``).
    """
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
