"""Random reads through a lying server, compared with astropy: the hostile suites' tally.

A provider's test suite puts a `cloudfits.testing.faults.FaultProxy` with hostile
answers (`cloudfits.testing.hostile`) between the provider and its store, opens the
object written by `write_hostile_fits`, and runs `run_reads`: each read of a random
image section or table slice must equal what astropy reads from the same local file,
or raise a documented `cloudfits.CloudFitsError`, and end within the retry deadline
(`ENVIRONMENT`). `assert_clean` says whether a run kept those promises.

`HostileReadTests` is the suite itself: each provider's test module subclasses it (as
with `cloudfits.testing.conformance.ProviderConformanceTests`), supplies the
``hostile_store`` fixture and the provider's options, and names the tests whose names
carry the provider's (see `HostileReadTests`).

Examples
--------
>>> expected = Expected.from_file(local)  # doctest: +SKIP
>>> tally = run_reads(lambda: remote, expected, 100)  # doctest: +SKIP
>>> assert_clean(tally, 100)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from astropy.io import fits

from ..errors import CloudFitsError, RangeResponseError, StaleIndexError, TransientProviderError
from ..fetch.reader import ObjectReader
from ..index.build import build_index
from ..providers.base import SupportsReadRange
from ..providers.location import ObjectLocation
from ..remote import open as cloudfits_open
from .faults import FaultProxy, FaultRates
from .hostile import HostileRates
from .proxy import RecordingProxy, RequestRecord
from .slowhead import SlowHeadServer

__all__ = [
    "ALWAYS_REFUSED",
    "DEADLINE",
    "ENVIRONMENT",
    "SLACK",
    "Expected",
    "HostileReadTests",
    "HostileStore",
    "Tally",
    "assert_clean",
    "one_read",
    "open_retrying",
    "run_reads",
    "write_hostile_fits",
]

DEADLINE = 4.0  # CLOUDFITS_RETRY_DEADLINE of the suites
SLACK = 1.5  # thread start, the last answer's check, the assembly
#: The environment of a hostile suite: short deadlines, many quick attempts.
ENVIRONMENT = {
    "CLOUDFITS_RETRY_DEADLINE": str(DEADLINE),
    "CLOUDFITS_READ_GRACE": "0.6",
    "CLOUDFITS_MIN_READ_RATE": "1000000",
    "CLOUDFITS_MAX_ATTEMPTS": "8",
    "CLOUDFITS_RETRY_BASE_DELAY": "0.01",
    "CLOUDFITS_RETRY_MAX_DELAY": "0.2",
}
#: The error each hostile answer (`cloudfits.testing.hostile.HOSTILE_KINDS`) must raise.
ALWAYS_REFUSED: dict[str, type[CloudFitsError]] = {
    "long_body": RangeResponseError,
    "chunked_long": RangeResponseError,
    "html": RangeResponseError,
    "junk_front": RangeResponseError,
    "wrong_total": RangeResponseError,
    "gzip": RangeResponseError,
    "replaced": StaleIndexError,
}


def write_hostile_fits(path: Path) -> Path:
    """Write the suites' file: a 180 x 150 int32 image and a 3,000-row table."""
    image = np.arange(180 * 150, dtype=np.int32).reshape(180, 150) * 7 - 1000
    n = 3000
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("T", "D", array=np.linspace(0, 1, n)),
            fits.Column("N", "J", array=np.arange(n) * 3),
        ]
    )
    fits.HDUList([fits.PrimaryHDU(image), table]).writeto(path)
    return path


@dataclass(frozen=True)
class Expected:
    """What astropy reads from the local copy of the suites' file."""

    image: np.ndarray
    table: Any

    @classmethod
    def from_file(cls, path: Path) -> Expected:
        """Astropy's values of ``path`` (written by `write_hostile_fits`)."""
        with fits.open(path, memmap=False) as hdul:
            return cls(np.array(hdul[0].data), hdul[1].data.copy())


@dataclass
class Tally:
    """What the reads of one run came to."""

    exact: int = 0
    wrong: int = 0
    late: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0

    @property
    def reads(self) -> int:
        """Every read of the run."""
        return self.exact + self.wrong + sum(self.errors.values())

    def add(self, outcome: tuple[str, float]) -> None:
        """Count one read's outcome (``"exact"``, ``"wrong"`` or an error's name)."""
        kind, seconds = outcome
        self.slowest = max(self.slowest, seconds)
        self.late += seconds > DEADLINE + SLACK
        if kind == "exact":
            self.exact += 1
        elif kind == "wrong":
            self.wrong += 1
        else:
            self.errors[kind] += 1

    def line(self, name: str) -> str:
        """One line of the figures, as ``docs/reliability.rst`` quotes them."""
        return (
            f"{name}: {self.reads} reads, {self.exact} exact, {self.wrong} wrong,"
            f" {self.late} late, slowest {self.slowest:.2f} s, errors {dict(self.errors)}"
        )


def one_read(opener: Callable[[], Any], expected: Expected, seed: int) -> tuple[str, float]:
    """One random read through ``opener()`` (a `RemoteFITS`), compared with astropy's.

    Returns ``"exact"``, ``"wrong"`` or the name of the `CloudFitsError` raised, and the
    seconds it took.
    """
    rng = random.Random(seed)
    started = time.monotonic()
    try:
        f = opener()
        if rng.random() < 0.6:
            r0, c0 = rng.randrange(0, 170), rng.randrange(0, 140)
            key = (slice(r0, r0 + rng.randrange(1, 10)), slice(c0, c0 + rng.randrange(1, 10)))
            ok = np.array_equal(f[0].section[key], expected.image[key])
        else:
            a = rng.randrange(0, 2990)
            got = f[1].read(rows=slice(a, a + 7), columns=["N", "T"])
            ok = np.array_equal(got["N"], expected.table["N"][a : a + 7]) and np.array_equal(
                got["T"], expected.table["T"][a : a + 7]
            )
        kind = "exact" if ok else "wrong"
    except CloudFitsError as err:
        kind = type(err).__name__
    return kind, time.monotonic() - started


def open_retrying(opener: Callable[[], Any], attempts: int = 20) -> Any:
    """``opener()``, again while it meets a documented error (opening reads too)."""
    for _ in range(attempts):
        try:
            return opener()
        except CloudFitsError:
            continue
    raise AssertionError(f"{attempts} opens in a row failed")


def run_reads(
    opener: Callable[[], Any], expected: Expected, reads: int, *, threads: int = 1
) -> Tally:
    """``reads`` random reads (`one_read`, seeds ``0..reads-1``) on ``threads`` threads."""
    tally = Tally()
    with ThreadPoolExecutor(threads) as pool:
        for outcome in pool.map(lambda s: one_read(opener, expected, s), range(reads)):
            tally.add(outcome)
    return tally


def assert_clean(tally: Tally, reads: int) -> None:
    """Every read counted, none wrong, none late, and most of them exact."""
    assert tally.reads == reads
    assert tally.wrong == 0, tally
    assert tally.late == 0, tally
    assert tally.exact >= reads // 2, tally  # the retries get through most hostility


#: The hostile answers of `HostileReadTests`' run of random reads, and its length.
RATES = HostileRates.uniform(0.45, slowloris=0.01)
READS = 100
_REPORT: dict[str, Tally] = {}


@dataclass(frozen=True)
class HostileStore:
    """What a provider's test class gives `HostileReadTests`.

    Attributes
    ----------
    uri : str
        The object written by `write_hostile_fits`, as the provider names it.
    upstream : str
        The root URL of the store's server, where the proxies forward to.
    unfaithful : str
        Empty, or why the runs with hostile answers skip on this store.
    """

    uri: str
    upstream: str
    unfaithful: str = ""


class HostileReadTests:
    """Issue 15's hostile-server suite, for the provider a subclass names.

    A subclass supplies the ``hostile_store`` fixture (a class-scoped `HostileStore`
    holding the object of the ``local`` fixture), `options`, `provider_class`, `seed`
    and `report_name`, and may override `read_timeout`, `head_direct`, `secrets`,
    `is_read` and `pinned`. The tests whose names carry the provider's are methods
    without the ``test_`` prefix, which the subclass names::

        test_high_2_3_azure_answers_go_through_the_engines_check = (
            HostileReadTests.answers_go_through_the_engines_check
        )

    and so are `hostile_reads_are_exact_or_documented_errors`,
    `one_byte_a_second_cannot_keep_a_read_alive` and `report` (``test_zz_report``,
    named last so that it follows the run it prints).
    """

    #: The class of the provider ``cloudfits.open`` must choose for `HostileStore.uri`.
    provider_class: ClassVar[type]
    #: The seed of the hostile proxy of the run of random reads.
    seed: ClassVar[int]
    #: The name of the run's figures in ``docs/reliability.rst``.
    report_name: ClassVar[str]
    #: Options giving the reads under a trickling server a long socket timeout.
    read_timeout: ClassVar[dict[str, Any]] = {"timeout": 30.0}
    #: Whether the object's description comes from the store itself, not the proxy.
    head_direct: ClassVar[bool] = False
    #: Credentials that must never reach the host a redirect names.
    secrets: ClassVar[tuple[str, ...]] = ()

    def options(self, root: str) -> dict[str, Any]:
        """The provider's options for the server (or proxy) at the root URL ``root``."""
        raise NotImplementedError

    def is_read(self, record: RequestRecord) -> bool:
        """Whether ``record`` is a read of the object's bytes."""
        return record.method == "GET"

    def pinned(self, record: RequestRecord, etag: str) -> bool:
        """Whether the read ``record`` names the version ``etag``."""
        return record.headers.get("if-match") == f'"{etag}"'

    @pytest.fixture(autouse=True)
    def _suite_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name, value in ENVIRONMENT.items():
            monkeypatch.setenv(name, value)

    @pytest.fixture(scope="class")
    @classmethod
    def local(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The suite's file, written by `write_hostile_fits`."""
        return write_hostile_fits(tmp_path_factory.mktemp("hostile") / "h.fits")

    @pytest.fixture
    def upstream(self, hostile_store: HostileStore) -> str:
        """`HostileStore.upstream`, for the runs with hostile answers."""
        if hostile_store.unfaithful:
            pytest.skip(hostile_store.unfaithful)
        return hostile_store.upstream

    @pytest.fixture
    def hostile(self, upstream: str) -> Iterator[tuple[FaultProxy, RecordingProxy]]:
        """A proxy with `RATES`, and the host its redirects name."""
        with (
            RecordingProxy(upstream) as elsewhere,
            FaultProxy(
                upstream, FaultRates(), hostile=RATES, redirect_to=elsewhere.url, seed=self.seed
            ) as proxy,
        ):
            yield proxy, elsewhere

    def _reader(self, location: ObjectLocation, upstream: str) -> ObjectReader:
        # With head_direct the description comes from the store: the proxy mangles GETs.
        described = (
            location.with_options(**self.options(upstream)) if self.head_direct else location
        )
        info = described.provider().head(location.path)
        return ObjectReader(
            location.provider(), location.path, location.uri, etag=info.etag, size=info.size
        )

    def answers_go_through_the_engines_check(
        self, hostile_store: HostileStore, local: Path
    ) -> None:
        """Reads are exact, and each GET asks for the identity encoding of one version."""
        expected = Expected.from_file(local)
        upstream = hostile_store.upstream
        f = cloudfits_open(hostile_store.uri, **self.options(upstream))
        assert isinstance(f.reader.provider, self.provider_class)
        assert isinstance(f.reader.provider, SupportsReadRange)
        assert (f[0].section[10:20, 30:45] == expected.image[10:20, 30:45]).all()
        rows = f[1].read(rows=slice(100, 140), columns=["T", "N"])
        assert (rows["N"] == expected.table["N"][100:140]).all()
        assert (rows["T"] == expected.table["T"][100:140]).all()
        with RecordingProxy(upstream) as proxy:
            location = ObjectLocation.from_uri(hostile_store.uri, **self.options(proxy.url))
            reader = self._reader(location, upstream)
            assert reader.read(5000, 9000) == local.read_bytes()[5000:9000]
            gets = [r for r in proxy.records if self.is_read(r)]
        assert gets
        assert all(r.headers.get("accept-encoding") == "identity" for r in gets)
        assert all(self.pinned(r, str(reader.etag)) for r in gets)

    def hostile_reads_are_exact_or_documented_errors(
        self,
        hostile_store: HostileStore,
        upstream: str,
        local: Path,
        hostile: tuple[FaultProxy, RecordingProxy],
    ) -> None:
        """`READS` random reads through `RATES` are exact or documented errors."""
        proxy, elsewhere = hostile
        index = build_index(hostile_store.uri.rsplit("/", 1)[0] + "/", **self.options(upstream))
        assert index.entry("h.fits").etag
        options = {**self.options(proxy.url), "max_concurrency": 1}
        f = open_retrying(lambda: index.open("h.fits", **options))
        tally = run_reads(lambda: f, Expected.from_file(local), READS)
        assert_clean(tally, READS)
        assert proxy.injected
        # The credentials sign each request; they never go to another host.
        for secret in self.secrets:
            assert all(secret not in str(r.headers) + r.target for r in elsewhere.records)
        _REPORT[self.report_name] = tally

    @pytest.mark.parametrize("kind", [*ALWAYS_REFUSED, "redirect"])
    def test_high_2_3_each_hostile_answer_is_refused_every_time(
        self, kind: str, hostile_store: HostileStore, upstream: str, local: Path
    ) -> None:
        expected = local.read_bytes()[5000:9000]
        with (
            RecordingProxy(upstream) as elsewhere,
            FaultProxy(
                upstream,
                FaultRates(),
                hostile=HostileRates(**{kind: 1.0}),
                redirect_to=elsewhere.url,
            ) as proxy,
        ):
            location = ObjectLocation.from_uri(hostile_store.uri, **self.options(proxy.url))
            reader = self._reader(location, upstream)
            if kind == "redirect":
                with contextlib.suppress(CloudFitsError):  # exact, or refused
                    assert reader.read(5000, 9000) == expected
                # Followed or not (the SDKs differ, and time out under load), the
                # credentials never reach the other host.
                assert all("authorization" not in r.headers for r in elsewhere.records)
                return
            with pytest.raises(ALWAYS_REFUSED[kind]):
                reader.read(5000, 9000)
            assert proxy.injected[kind] >= 1

    def one_byte_a_second_cannot_keep_a_read_alive(
        self, hostile_store: HostileStore, upstream: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A body trickled a byte a second ends by the read deadline."""
        monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
        with FaultProxy(
            upstream, FaultRates(), hostile=HostileRates(slowloris=1.0), slow_rate=1.0
        ) as proxy:
            location = ObjectLocation.from_uri(
                hostile_store.uri, **self.read_timeout, **self.options(proxy.url)
            )
            reader = self._reader(location, upstream)
            started = time.monotonic()
            with pytest.raises(TransientProviderError, match="read deadline"):
                reader.read(0, 4000)
            elapsed = time.monotonic() - started
        assert elapsed < 2.0 + 0.5
        assert proxy.injected["slowloris"] >= 2  # the deadline cut more than one attempt
        assert elapsed < DEADLINE

    def test_medium_4_a_server_trickling_its_headers_cannot_keep_a_read_alive(
        self, hostile_store: HostileStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
        with SlowHeadServer() as server:
            location = ObjectLocation.from_uri(
                hostile_store.uri, **self.read_timeout, **self.options(server.url)
            )
            reader = ObjectReader(location.provider(), location.path, location.uri, size=100)
            started = time.monotonic()
            with pytest.raises(TransientProviderError, match="read deadline"):
                reader.read(0, 10)
            elapsed = time.monotonic() - started
            assert server.gets >= 1
        assert elapsed < 2.0 + 0.5

    def report(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Print the figures of the run above (docs/reliability.rst quotes them)."""
        with capsys.disabled():
            if self.report_name in _REPORT:
                print("\n" + _REPORT[self.report_name].line(self.report_name))
