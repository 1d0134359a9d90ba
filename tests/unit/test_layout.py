"""The package layout: old module paths still import, the layers import no heavy SDK."""

from __future__ import annotations

import ast
import importlib
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import cloudfits
from cloudfits._compat import MOVED
from cloudfits.providers.location import ObjectLocation


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_module_paths_still_import_and_warn(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert any(
        issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught
    ), [str(w.message) for w in caught]


def test_old_names_resolve_to_the_same_objects() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from cloudfits.fetcher import ObjectReader, coalesce  # type: ignore[import-not-found]
        from cloudfits.indexer import build_index  # type: ignore[import-not-found]
        from cloudfits.plugins import get_registry  # type: ignore[import-not-found]
    from cloudfits.fetch import ObjectReader as new_reader
    from cloudfits.fetch import coalesce as new_coalesce

    assert ObjectReader is new_reader
    assert coalesce is new_coalesce
    assert build_index is cloudfits.build_index
    assert get_registry is cloudfits.get_registry


def test_public_paths_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from cloudfits.index import FitsIndex
        from cloudfits.remote import RemoteFITS

    assert FitsIndex is cloudfits.FitsIndex
    assert RemoteFITS is cloudfits.RemoteFITS


HEAVY = (
    "boto3",
    "botocore",
    "urllib3",
    "pyarrow",
    "jsonschema",
    "google.cloud",
    "azure",
    "libcloud",
    "dask",
    "matplotlib",
    "astropy.table",  # a quarter of a second; imported by the first table read
)


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return [m for m in out.strip().split(",") if m]


def test_import_cloudfits_loads_no_heavy_module() -> None:
    assert _loaded_after("import cloudfits") == []


def test_a_local_read_loads_no_cloud_sdk(tmp_path: object) -> None:
    code = (
        "import numpy as np, pathlib, tempfile\n"
        "from astropy.io import fits\n"
        "import cloudfits\n"
        "p = pathlib.Path(tempfile.mkdtemp()) / 'a.fits'\n"
        "fits.PrimaryHDU(np.arange(100, dtype='>i2').reshape(10, 10)).writeto(p)\n"
        "assert cloudfits.open(p)[0].section[2:4, 3].tolist() == [23, 33]\n"
        "idx = cloudfits.build_index(p.parent)\n"
        "assert idx.open('a.fits')[0].section[9, 9] == 99\n"
    )
    assert _loaded_after(code) == []


def test_object_location_rebuilds_its_provider_after_pickling(tmp_path: object) -> None:
    location = ObjectLocation.from_uri("s3://bucket/dir", requester_pays=True)
    child = location.below("a.fits")
    assert (child.scheme, child.path, child.uri) == (
        "s3",
        "bucket/dir/a.fits",
        "s3://bucket/dir/a.fits",
    )
    again = pickle.loads(pickle.dumps(child))
    assert again == child
    assert again.provider() is child.provider()
    assert "True" not in repr(child.options)  # values are never shown


def test_object_location_of_a_local_directory_roots_the_reads(tmp_path: object) -> None:
    base = ObjectLocation.from_uri("/data/survey")
    child = base.below("night1/a.fits")
    assert child.path == "night1/a.fits"
    assert dict(child.options) == {"root": "/data/survey"}
    assert child.uri == "/data/survey/night1/a.fits"


def test_object_location_redacts_and_withholds_url_credentials() -> None:
    location = ObjectLocation.from_uri("https://user:pw@example.org/data/a.fits")
    assert location.uri == "https://example.org/data/a.fits"
    portable, withheld = location.portable()
    assert "pw" not in portable.path
    assert "pw" not in repr(portable)
    assert withheld == ("credentials in the URL (user:password, signed-URL tokens)",)


# From the top down: a module may import its own layer and the layers after it.
LAYERS = ("cli", "scale", "astro", "index", "remote", "fits", "fetch", "providers")
BOTTOM = ("errors", "uri", "_version", "_compat")
# The imports up the stack, both inside functions, both for the optional dask extra:
# RemoteHDU.to_dask, and build_index(executor="dask"). The command line may use the
# public names of the package itself (the tutorial shows them).
ALLOWED_UPWARD = {("remote", "scale"), ("index", "scale"), ("cli", "")}


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) < 2:
        return -1  # the package itself re-exports everything
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if parts[1] in BOTTOM:
        return len(LAYERS)
    return -1


def _runtime_imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []

    def visit(node: ast.AST, in_type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            guarded = in_type_checking or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, ast.ImportFrom) and not guarded and child.level:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                base = package.split(".")[: len(package.split(".")) - child.level + 1]
                found.append(".".join([*base, *([child.module] if child.module else [])]))
            elif isinstance(child, ast.Import) and not guarded:
                found.extend(a.name for a in child.names if a.name.startswith("cloudfits"))
            visit(child, guarded)

    visit(tree, False)
    return found


def test_layers_import_only_downwards() -> None:
    root = Path(cloudfits.__file__).parent
    wrong = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        if module.startswith("cloudfits.testing") or _layer(module) < 0:
            continue
        here = module.split(".")[1]
        for target in _runtime_imports(path, module):
            there = target.split(".")[1] if "." in target else ""
            if there == "testing":
                assert module.startswith("cloudfits.cli."), f"{module} imports {target}"
                continue
            if _layer(target) < _layer(module) and (here, there) not in ALLOWED_UPWARD:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_module_is_over_450_lines() -> None:
    root = Path(cloudfits.__file__).parent
    long = {
        str(p.relative_to(root)): n
        for p in root.rglob("*.py")
        if "testing" not in p.parts and (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}
