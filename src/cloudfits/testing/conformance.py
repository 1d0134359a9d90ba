"""One set of tests that every storage provider must pass.

Each provider's test module subclasses `ProviderConformanceTests` (as s3fs subclasses
fsspec's abstract tests) and supplies one fixture, ``conformance_store``, returning a
`ConformanceStore`: the provider, an empty base path that belongs to this test alone,
and a way to create objects below it. The base class then checks that the provider
keeps the contract of `cloudfits.Provider`: half-open ranges clipped at the end of the
object, `cloudfits.ObjectNotFoundError` for missing objects, listings in path order,
index round trips and exact answers under concurrency.

Examples
--------
::

    class TestFileProvider(ProviderConformanceTests):
        large_listing = True

        @pytest.fixture
        def conformance_store(self, tmp_path):
            def put(relpath, data):
                target = tmp_path / relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)

            return ConformanceStore(FileProvider(FileConfig()), str(tmp_path), put)

For pytest's detailed assertion messages in these inherited tests, call
``pytest.register_assert_rewrite("cloudfits.testing.conformance")`` in ``conftest.py``
(or before this module is first imported).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from ..errors import ObjectNotFoundError, StaleIndexError, UnsupportedOperationError
from ..providers.base import ObjectInfo, Provider

__all__ = ["ConformanceStore", "ProviderConformanceTests"]

#: Size of the object most tests read: not a multiple of any block or page size.
OBJECT_SIZE = 10_007
#: Objects created by the listing-pagination test: more than one S3 page of 1,000.
LARGE_LISTING_COUNT = 1100


@dataclass(frozen=True)
class ConformanceStore:
    """What a provider's test class gives the conformance tests.

    Attributes
    ----------
    provider : cloudfits.Provider
        The provider under test.
    base : str
        A path prefix for ``provider`` with nothing below it yet (for example
        ``"bucket/run-1234"``, ``"127.0.0.1:8080/t1"`` or a temporary directory),
        without a trailing ``/``. Each test must get its own.
    put : callable
        ``put(relpath, data)`` creates the object ``base + "/" + relpath`` holding
        ``data``. For read-only providers it writes wherever the served objects come from.
    """

    provider: Provider
    base: str
    put: Callable[[str, bytes], None]

    def path(self, relpath: str) -> str:
        """The provider path of ``relpath`` below `base`.

        Parameters
        ----------
        relpath : str
            A ``/``-separated path relative to the base.

        Returns
        -------
        str
        """
        return f"{self.base}/{relpath}"


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class ProviderConformanceTests:
    """Tests of the provider contract, for subclassing by each provider's tests.

    A subclass must define a function-scoped fixture ``conformance_store(self, ...)``
    returning a `ConformanceStore`, and may set these class attributes:

    Attributes
    ----------
    can_list : bool
        False when the provider cannot list; ``list`` must then raise
        `cloudfits.UnsupportedOperationError`.
    can_write : bool
        False for read-only providers; ``put_index`` must then raise
        `cloudfits.UnsupportedOperationError`.
    has_etag : bool
        True when ``head`` (and ``list``) must give an entity tag.
    large_listing : bool
        Run the test creating 1,100 objects, to cross listing page boundaries.
    missing_bucket : str or None
        A path prefix naming a bucket (container) that does not exist, for stores that
        have buckets; reads, ``head`` and ``list`` below it must raise
        `cloudfits.ObjectNotFoundError`.
    """

    can_list: bool = True
    can_write: bool = True
    has_etag: bool = False
    large_listing: bool = False
    missing_bucket: str | None = None

    @pytest.fixture
    def conformance_store(self) -> ConformanceStore:
        """The provider and a fresh base path; every subclass overrides this fixture."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a 'conformance_store' fixture"
        )

    @pytest.fixture
    def stored_object(self, conformance_store: ConformanceStore) -> tuple[str, bytes]:
        """One object of `OBJECT_SIZE` random bytes: its provider path and content."""
        data = _payload(OBJECT_SIZE, seed=1)
        conformance_store.put("object.bin", data)
        return conformance_store.path("object.bin"), data

    # ------------------------------------------------------------------ reads

    def test_is_a_provider(self, conformance_store: ConformanceStore) -> None:
        assert isinstance(conformance_store.provider, Provider)

    @pytest.mark.parametrize(
        ("start", "length"),
        [(0, 1), (0, 2880), (1, 100), (4000, 2000), (10_006, 1), (10_000, 7), (0, OBJECT_SIZE)],
        ids=["first-byte", "first-block", "start", "middle", "last-byte", "end", "whole"],
    )
    def test_range_is_exact(
        self,
        conformance_store: ConformanceStore,
        stored_object: tuple[str, bytes],
        start: int,
        length: int,
    ) -> None:
        path, data = stored_object
        got = conformance_store.provider.get_range(path, start, start + length)
        assert got == data[start : start + length]
        assert len(got) == length

    def test_empty_range(
        self, conformance_store: ConformanceStore, stored_object: tuple[str, bytes]
    ) -> None:
        path, data = stored_object
        provider = conformance_store.provider
        for offset in (0, 1, 5000, len(data) - 1, len(data)):
            assert provider.get_range(path, offset, offset) == b""

    def test_range_past_end_is_clipped(
        self, conformance_store: ConformanceStore, stored_object: tuple[str, bytes]
    ) -> None:
        path, data = stored_object
        provider = conformance_store.provider
        assert provider.get_range(path, len(data) - 10, len(data) + 1000) == data[-10:]
        assert provider.get_range(path, len(data) - 1, len(data) + 1) == data[-1:]
        assert provider.get_range(path, 0, 3 * len(data)) == data

    @pytest.mark.parametrize("offset", [0, 1, 2880], ids=["at", "after", "far"])
    def test_range_from_or_after_size_is_empty(
        self,
        conformance_store: ConformanceStore,
        stored_object: tuple[str, bytes],
        offset: int,
    ) -> None:
        path, data = stored_object
        start = len(data) + offset
        assert conformance_store.provider.get_range(path, start, start + 100) == b""

    def test_empty_object(self, conformance_store: ConformanceStore) -> None:
        conformance_store.put("empty.bin", b"")
        path = conformance_store.path("empty.bin")
        provider = conformance_store.provider
        assert provider.head(path).size == 0
        assert provider.get_range(path, 0, 0) == b""
        assert provider.get_range(path, 0, 100) == b""

    def test_binary_content_is_untouched(self, conformance_store: ConformanceStore) -> None:
        # Line endings, NUL bytes and gzip magic must not be translated or decoded.
        data = b"\x1f\x8b\x08\x00\r\n\n\r\x00\xff" * 300
        conformance_store.put("raw.json.gz", data)
        path = conformance_store.path("raw.json.gz")
        assert conformance_store.provider.get_range(path, 0, len(data)) == data
        assert conformance_store.provider.head(path).size == len(data)

    def test_missing_object(self, conformance_store: ConformanceStore) -> None:
        conformance_store.put("present.bin", b"x")
        provider = conformance_store.provider
        for missing in ("absent.bin", "no-such-dir/absent.bin"):
            path = conformance_store.path(missing)
            with pytest.raises(ObjectNotFoundError):
                provider.get_range(path, 0, 10)
            with pytest.raises(ObjectNotFoundError):
                provider.head(path)
            # It is also the standard library's error, for code that catches that.
            with pytest.raises(FileNotFoundError):
                provider.head(path)

    def test_missing_bucket(self, conformance_store: ConformanceStore) -> None:
        if self.missing_bucket is None:
            pytest.skip("the provider has no buckets")
        provider = conformance_store.provider
        path = f"{self.missing_bucket}/absent.bin"
        with pytest.raises(ObjectNotFoundError):
            provider.get_range(path, 0, 10)
        with pytest.raises(ObjectNotFoundError):
            provider.head(path)
        if self.can_list:
            with pytest.raises(ObjectNotFoundError):
                list(provider.list(f"{self.missing_bucket}/"))

    def test_etag_follows_the_content(self, conformance_store: ConformanceStore) -> None:
        # The entity tag identifies one version of the content: it changes when the
        # object is replaced (even by bytes of the same length) and list agrees with head.
        if not self.has_etag:
            pytest.skip("the provider gives no entity tags")
        provider = conformance_store.provider
        path = conformance_store.path("versioned.bin")
        conformance_store.put("versioned.bin", b"A" * 3000)
        first = provider.head(path).etag
        conformance_store.put("versioned.bin", b"B" * 3000)
        second = provider.head(path).etag
        assert first
        assert second
        assert first != second
        assert provider.get_range(path, 0, 3) == b"BBB"
        if self.can_list:
            (listed,) = list(provider.list(path))
            assert listed.etag == second

    def test_head(
        self, conformance_store: ConformanceStore, stored_object: tuple[str, bytes]
    ) -> None:
        path, data = stored_object
        info = conformance_store.provider.head(path)
        assert isinstance(info, ObjectInfo)
        assert info.path == path
        assert info.size == len(data)
        if self.has_etag:
            assert info.etag
            assert '"' not in info.etag
            # Stable while the object is unchanged.
            assert conformance_store.provider.head(path).etag == info.etag

    def test_concurrent_reads_are_exact(self, conformance_store: ConformanceStore) -> None:
        size = 1 << 20
        data = _payload(size, seed=2)
        conformance_store.put("concurrent.bin", data)
        path = conformance_store.path("concurrent.bin")
        rng = random.Random(3)
        ranges = []
        for _ in range(64):
            start = rng.randrange(size)
            ranges.append((start, min(size + 10, start + rng.randrange(1, 100_000))))
        provider = conformance_store.provider
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda r: provider.get_range(path, *r), ranges))
        for (start, end), got in zip(ranges, answers, strict=True):
            assert got == data[start:end], f"bytes [{start}, {end})"

    def test_changed_object_raises_stale(self, conformance_store: ConformanceStore) -> None:
        # A read pinned to the entity tag head() gave must never return bytes of a
        # newer version: neither after a rewrite to another size, nor after one that
        # keeps the size. The pause lets a time-stamp based tag see a new time.
        store, provider = conformance_store, conformance_store.provider
        first = _payload(OBJECT_SIZE, seed=5)
        store.put("changing.bin", first)
        path = store.path("changing.bin")
        tag = provider.head(path).etag
        assert tag, "staleness checks need an entity tag from head()"
        assert provider.get_range(path, 0, 100, etag=tag) == first[:100]
        time.sleep(0.05)
        store.put("changing.bin", first + b"appended")
        with pytest.raises(StaleIndexError, match=r"changing\.bin"):
            provider.get_range(path, 0, 100, etag=tag)
        second = _payload(OBJECT_SIZE + 8, seed=6)
        tag_before = provider.head(path).etag
        assert tag_before != tag
        time.sleep(0.05)
        store.put("changing.bin", second)
        with pytest.raises(StaleIndexError, match=r"changing\.bin"):
            provider.get_range(path, 10, 20, etag=tag_before)
        tag_now = provider.head(path).etag
        assert tag_now != tag_before
        assert provider.get_range(path, 10, 20, etag=tag_now) == second[10:20]

    # ---------------------------------------------------------------- listing

    def _listing_tree(self, store: ConformanceStore) -> dict[str, bytes]:
        # "-" < "." < "/" in byte order: walk order and path order differ here.
        tree = {
            "a/b-x.bin": b"1",
            "a/b.bin": b"22",
            "a/b/y.bin": b"333",
            "a/c/d/e.bin": b"4444",
            "ab.bin": b"55555",
            "z.bin": b"666666",
        }
        for relpath, data in tree.items():
            store.put(relpath, data)
        return tree

    def test_list_prefix(self, conformance_store: ConformanceStore) -> None:
        provider = conformance_store.provider
        if not self.can_list:
            with pytest.raises(UnsupportedOperationError):
                list(provider.list(conformance_store.base + "/"))
            return
        tree = self._listing_tree(conformance_store)
        listed = list(provider.list(conformance_store.path("a/")))
        assert all(isinstance(info, ObjectInfo) for info in listed)
        wanted = {conformance_store.path(n): len(d) for n, d in tree.items() if n[:2] == "a/"}
        assert sorted(info.path for info in listed) == sorted(wanted)
        assert {info.path: info.size for info in listed} == wanted

    def test_list_whole_base(self, conformance_store: ConformanceStore) -> None:
        if not self.can_list:
            pytest.skip("the provider cannot list")
        tree = self._listing_tree(conformance_store)
        listed = list(conformance_store.provider.list(conformance_store.base + "/"))
        wanted = sorted(conformance_store.path(n) for n in tree)
        assert sorted(info.path for info in listed) == wanted

    def test_list_is_in_path_order(self, conformance_store: ConformanceStore) -> None:
        # Path order is byte order of the paths, as AWS S3 lists keys; not the order
        # of a walk through directories ("a/b-x.bin" < "a/b.bin" < "a/b/y.bin").
        if not self.can_list:
            pytest.skip("the provider cannot list")
        tree = self._listing_tree(conformance_store)
        listed = [i.path for i in conformance_store.provider.list(conformance_store.base + "/")]
        assert listed == [conformance_store.path(n) for n in sorted(tree)]

    def test_list_is_a_string_prefix(self, conformance_store: ConformanceStore) -> None:
        # The contract: every object whose path *starts with* the prefix, as object
        # stores list; "a" matches "a/..." and "ab.bin" alike.
        if not self.can_list:
            pytest.skip("the provider cannot list")
        tree = self._listing_tree(conformance_store)
        listed = list(conformance_store.provider.list(conformance_store.path("a")))
        wanted = sorted(conformance_store.path(n) for n in tree if n.startswith("a"))
        assert sorted(info.path for info in listed) == wanted

    def test_list_agrees_with_head_and_reads(self, conformance_store: ConformanceStore) -> None:
        if not self.can_list:
            pytest.skip("the provider cannot list")
        tree = self._listing_tree(conformance_store)
        provider = conformance_store.provider
        for info in provider.list(conformance_store.base + "/"):
            head = provider.head(info.path)
            assert head.size == info.size
            if self.has_etag:
                assert info.etag == head.etag
            relpath = info.path[len(conformance_store.base) + 1 :]
            assert provider.get_range(info.path, 0, info.size + 1) == tree[relpath]

    def test_list_of_nothing_is_empty(self, conformance_store: ConformanceStore) -> None:
        if not self.can_list:
            pytest.skip("the provider cannot list")
        conformance_store.put("present.bin", b"x")
        provider = conformance_store.provider
        assert list(provider.list(conformance_store.path("absent/"))) == []
        assert list(provider.list(conformance_store.path("q"))) == []

    def test_large_listing(self, conformance_store: ConformanceStore) -> None:
        if not self.large_listing:
            pytest.skip("large listings are not tested for this provider")
        if not self.can_list:
            pytest.skip("the provider cannot list")
        names = [f"many/{i:05d}.bin" for i in range(LARGE_LISTING_COUNT)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda n: conformance_store.put(n, n.encode()), names))
        listed = list(conformance_store.provider.list(conformance_store.path("many/")))
        assert [info.path for info in listed] == [conformance_store.path(n) for n in names]
        assert {info.size for info in listed} == {len(names[0])}

    # ---------------------------------------------------------------- writing

    def test_put_index_round_trip(self, conformance_store: ConformanceStore) -> None:
        provider = conformance_store.provider
        path = conformance_store.path("indexes/sub/cloudfits-index.json.gz")
        first = _payload(5000, seed=4)
        if not self.can_write:
            with pytest.raises(UnsupportedOperationError):
                provider.put_index(path, first)
            return
        provider.put_index(path, first)
        assert provider.head(path).size == len(first)
        assert provider.get_range(path, 0, len(first) + 1) == first
        # Writing again replaces the object, also with something shorter.
        second = b'{"format": "cloudfits-index"}'
        provider.put_index(path, second)
        assert provider.head(path).size == len(second)
        assert provider.get_range(path, 0, 1000) == second
