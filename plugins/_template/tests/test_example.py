"""The template provider passes the shared conformance suite (start your server here)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("cloudfits.testing.conformance")

from cloudfits_example.provider import ExampleProvider  # noqa: E402

from cloudfits import StaleIndexError  # noqa: E402
from cloudfits.providers.registry import get_registry  # noqa: E402
from cloudfits.testing import ConformanceStore, ProviderConformanceTests  # noqa: E402


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class TestExampleProvider(ProviderConformanceTests):
    has_etag = True
    large_listing = True

    @pytest.fixture
    def conformance_store(self, tmp_path: Path) -> ConformanceStore:
        # A real plugin starts its store's local emulator in a session fixture here.
        provider, path = get_registry().for_uri("example://store/run", root=str(tmp_path))
        assert isinstance(provider, ExampleProvider)
        return ConformanceStore(
            provider, path, lambda rel, data: _write(tmp_path / "store" / "run" / rel, data)
        )


def test_changed_object_raises_stale(tmp_path: Path) -> None:
    provider, path = get_registry().for_uri("example://a.bin", root=str(tmp_path))
    _write(tmp_path / "a.bin", b"first version")
    etag = provider.head(path).etag
    assert provider.get_range(path, 0, 5, etag=etag) == b"first"
    _write(tmp_path / "a.bin", b"second version")
    with pytest.raises(StaleIndexError, match=r"example://a\.bin"):
        provider.get_range(path, 0, 5, etag=etag)
