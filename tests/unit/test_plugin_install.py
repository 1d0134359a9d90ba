"""Plugins installed by pip, as a third party ships them; plugin loading is lazy.

A throwaway distribution is written to a temporary directory, installed with
``pip install --target`` (offline: no index, no build isolation) and found through its
``cloudfits`` entry point, in this process and in a fresh interpreter.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.errors import CloudFitsWarning
from cloudfits.providers.registry import (
    DEFAULT_PLUGINS,
    PluginManager,
    ProviderRegistry,
    get_registry,
    reset_registry,
)

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1"

[project.entry-points.cloudfits]
{entry} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""

WORKING = '''\
"""A third-party provider: ``SCHEME://name`` serves FITS bytes kept in memory."""
from __future__ import annotations

from dataclasses import dataclass

import cloudfits

OBJECTS: dict[str, bytes] = {}


@dataclass(frozen=True, kw_only=True)
class Config:
    shelf: str = "main"


class Provider:
    def __init__(self, config):
        self.config = config

    def _get(self, path):
        if path not in OBJECTS:
            raise cloudfits.ObjectNotFoundError(f"SCHEME://{path} not found")
        return OBJECTS[path]

    def get_range(self, path, start, end, *, etag=None):
        return self._get(path)[start:end]

    def head(self, path):
        return cloudfits.ObjectInfo(path, len(self._get(path)))

    def list(self, prefix):
        for path in sorted(OBJECTS):
            if path.startswith(prefix):
                yield cloudfits.ObjectInfo(path, len(OBJECTS[path]))

    def put_index(self, path, data):
        OBJECTS[path] = bytes(data)


@cloudfits.hookimpl
def cloudfits_register_providers(registry):
    registry.add(
        cloudfits.ProviderSpec(
            name="SCHEME",
            schemes=("SCHEME",),
            config_type=Config,
            factory=lambda config, scheme: Provider(config),
            description="a third-party test provider",
        )
    )
'''

BROKEN = 'raise RuntimeError("BROKEN-PLUGIN-MARKER: this plugin cannot be imported")\n'


def _pip_install(project: Path, target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet",
        "--no-index", "--no-deps", "--no-build-isolation",
        "--target", str(target), str(project),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _project(root: Path, dist: str, entry: str, module: str, source: str) -> Path:
    project = root / dist
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, entry=entry, module=module))
    (project / f"{module}.py").write_text(source)
    return project


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A working and a broken plugin, pip-installed into one target directory."""
    root = tmp_path_factory.mktemp("third-party")
    token = uuid.uuid4().hex[:8]
    scheme = f"shelf{token}"
    target = root / "site"
    working = _project(
        root, f"cf-shelf-{token}", "shelf", f"cf_shelf_{token}", WORKING.replace("SCHEME", scheme)
    )
    broken = _project(root, f"cf-broken-{token}", "brokenimport", f"cf_broken_{token}", BROKEN)
    _pip_install(working, target)
    _pip_install(broken, target)
    return target, scheme


@pytest.fixture
def on_path(
    installed: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    target, _ = installed
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.delenv("CLOUDFITS_PLUGINS", raising=False)
    monkeypatch.delenv("CLOUDFITS_DISABLE_PLUGINS", raising=False)
    reset_registry()
    yield installed
    reset_registry()


def _fits() -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.arange(48, dtype=">i4").reshape(6, 8)).writeto(buffer)
    return buffer.getvalue()


def test_pip_installed_plugin_is_discovered_and_used(on_path: tuple[Path, str]) -> None:
    _, scheme = on_path
    with pytest.warns(CloudFitsWarning, match="brokenimport.*BROKEN-PLUGIN-MARKER"):
        spec = get_registry().by_scheme(scheme)
    assert spec.name == scheme
    module = sys.modules[spec.factory.__module__]
    module.OBJECTS["b/x.fits"] = _fits()
    with cloudfits.open(f"{scheme}://b/x.fits", shelf="other") as f:
        assert f[0].section[2:4, 3:6].tolist() == [[19, 20, 21], [27, 28, 29]]
    index = cloudfits.build_index(f"{scheme}://b/")
    index.save(f"{scheme}://b/index.json")
    assert cloudfits.load_index(f"{scheme}://b/index.json").paths == ["x.fits"]
    # The rest still load: the built-ins, and any installed plugin.
    assert {"file", "s3", "spaces", "https"} <= {s.name for s in get_registry().specs()}


def test_broken_plugin_can_be_disabled(
    on_path: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, scheme = on_path
    monkeypatch.setenv("CLOUDFITS_DISABLE_PLUGINS", "brokenimport")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CloudFitsWarning)
        assert get_registry().by_scheme(scheme).name == scheme


def _fresh_python(code: str, *, pythonpath: str = "") -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_a_fresh_interpreter_lists_the_installed_plugin(installed: tuple[Path, str]) -> None:
    target, scheme = installed
    out = _fresh_python(
        "from cloudfits.cli import main; main(['providers'])", pythonpath=str(target)
    )
    assert scheme in out
    assert "a third-party test provider" in out
    assert "brokenimport" in out  # the warning names the broken plugin


def test_loading_is_lazy() -> None:
    """Importing cloudfits loads no plugin; building the registry imports no SDK."""
    out = _fresh_python(
        """
        import sys
        import cloudfits
        print("after import:", sorted(m for m in sys.modules if m.startswith("cloudfits_")))
        cloudfits.get_registry()
        sdks = ("google.cloud.storage", "azure.storage.blob", "libcloud.storage")
        print("sdks:", [m for m in sdks if m in sys.modules])
        """
    )
    assert "after import: []" in out
    assert "sdks: []" in out


MISSPELLED = '''\
"""A plugin whose second hook implementation has a misspelled name."""
from __future__ import annotations

import cloudfits


@cloudfits.hookimpl
def cloudfits_register_providers(registry):
    raise AssertionError("a plugin with an unknown hook must be skipped before its hooks run")


@cloudfits.hookimpl
def cloudfits_register_provider(registry):  # the "s" is missing
    raise AssertionError("never called")
'''


@pytest.fixture(scope="module")
def misspelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A working plugin and one with a misspelled hook implementation, pip-installed."""
    root = tmp_path_factory.mktemp("misspelled")
    token = uuid.uuid4().hex[:8]
    scheme = f"shelf{token}"
    target = root / "site"
    working = _project(
        root, f"cf-shelf-{token}", "shelf", f"cf_shelf_{token}", WORKING.replace("SCHEME", scheme)
    )
    typo = _project(root, f"cf-typo-{token}", "typoplugin", f"cf_typo_{token}", MISSPELLED)
    _pip_install(working, target)
    _pip_install(typo, target)
    return target, scheme


def test_misspelled_hookimpl_is_a_warning_naming_the_plugin(
    misspelled: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, scheme = misspelled
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.delenv("CLOUDFITS_PLUGINS", raising=False)
    monkeypatch.delenv("CLOUDFITS_DISABLE_PLUGINS", raising=False)
    reset_registry()
    try:
        with pytest.warns(CloudFitsWarning) as caught:
            registry = get_registry()
        messages = [str(w.message) for w in caught]
        assert any(
            "'typoplugin'" in m
            and "'cloudfits_register_provider'" in m
            and "cloudfits_register_providers" in m
            for m in messages
        ), messages
        assert not any("must be skipped" in m for m in messages), messages
        # The plugin is skipped (its correct hook never ran); the others load.
        assert registry.by_scheme(scheme).name == scheme
        assert {"file", "s3", "spaces", "https"} <= {s.name for s in registry.specs()}
    finally:
        reset_registry()


def test_plugin_manager_types_every_hook_call() -> None:
    """The hooks are called through typed methods only; nothing else touches pm.hook."""
    source = (Path(cloudfits.__file__).parent / "providers" / "registry.py").read_text()
    assert source.count("self._pm.hook.") == 1  # inside PluginManager.register_providers
    for path in Path(cloudfits.__file__).parent.rglob("*.py"):
        if path.name != "registry.py":
            assert "pm.hook" not in path.read_text(), path
    manager = PluginManager()
    assert manager.hook_names() == ["cloudfits_register_providers"]
    manager.load_plugins()
    assert set(DEFAULT_PLUGINS) <= set(manager.plugin_names())
    registry = ProviderRegistry()
    manager.register_providers(registry)
    assert {"file", "s3", "spaces", "https"} <= {s.name for s in registry.specs()}
