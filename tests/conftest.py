"""Shared fixtures: the astropy FITS corpus, local S3, GCS and Azure servers, a TESS cube.

The GCS and Azure servers are started only when the ``cloudfits-gcs`` and
``cloudfits-azure`` plugins are installed (tests needing them skip otherwise).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import astropy.io.fits
import pytest

# Detailed assertion messages inside the shared suites the test files subclass.
pytest.register_assert_rewrite("cloudfits.testing.hostile_reads", "cloudfits.testing.canaries")

from cloudfits.testing.azurite import AzuriteServer, azurite_environment, start_azurite  # noqa: E402
from cloudfits.testing.gcs import GCP_STORAGE_EMULATOR, GCSServer, start_gcs_server  # noqa: E402
from cloudfits.testing.process import serving, start_or_skip  # noqa: E402
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs  # noqa: E402

CORPUS_DIR = Path(astropy.io.fits.__file__).parent / "tests" / "data"
CORPUS = sorted(p.relative_to(CORPUS_DIR).as_posix() for p in CORPUS_DIR.rglob("*.fits"))
CORPUS_BUCKET = "corpus"
CORPUS_PREFIX = "astropy/data"
TESS_FRAMES = 20
TESS_SHAPE = (64, 64)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server on 127.0.0.1, with boto3's environment pointed at it."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    environment = {
        "AWS_ENDPOINT_URL": server.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with serving(server, environment):
        yield server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    """gcp-storage-emulator on 127.0.0.1, ``STORAGE_EMULATOR_HOST`` pointed at it.

    The gs:// provider's own tests (in its plugin) also run against fake-gcs-server.
    """
    pytest.importorskip("cloudfits_gcs", reason="the cloudfits-gcs plugin is not installed")
    server = start_or_skip(
        lambda: start_gcs_server(GCP_STORAGE_EMULATOR, tmp_path_factory.mktemp("gcs"))
    )
    with serving(server, {"STORAGE_EMULATOR_HOST": server.endpoint_url}):
        yield server


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    """Azurite on 127.0.0.1, ``AZURE_STORAGE_CONNECTION_STRING`` pointed at it."""
    pytest.importorskip("cloudfits_azure", reason="the cloudfits-azure plugin is not installed")
    server = start_or_skip(lambda: start_azurite(tmp_path_factory.mktemp("azurite")))
    with serving(server, azurite_environment(server)):
        yield server


def _upload_corpus(put: Callable[[str, Path], None]) -> None:
    for rel in CORPUS:
        put(f"{CORPUS_PREFIX}/{rel}", CORPUS_DIR / rel)


@pytest.fixture(scope="session")
def gcs_corpus_uri(gcs_server: GCSServer) -> str:
    """``gs://corpus/astropy/data``: astropy's test FITS files in gcp-storage-emulator."""
    gcs_server.create_bucket(CORPUS_BUCKET)
    bucket = gcs_server.client().bucket(CORPUS_BUCKET)
    _upload_corpus(lambda key, path: bucket.blob(key).upload_from_filename(str(path)))
    return f"gs://{CORPUS_BUCKET}/{CORPUS_PREFIX}"


@pytest.fixture(scope="session")
def azure_corpus_uri(azurite: AzuriteServer) -> str:
    """``az://corpus/astropy/data``: astropy's test FITS files in Azurite."""
    azurite.create_container(CORPUS_BUCKET)
    container = azurite.service_client().get_container_client(CORPUS_BUCKET)
    _upload_corpus(lambda key, path: container.upload_blob(key, path.read_bytes()))
    return f"az://{CORPUS_BUCKET}/{CORPUS_PREFIX}"


@pytest.fixture(scope="session")
def corpus_uri(s3_server: S3Server) -> str:
    """``s3://corpus/astropy/data``: every FITS file of astropy's test data, uploaded."""
    s3_server.create_bucket(CORPUS_BUCKET)
    client = s3_server.client()
    for rel in CORPUS:
        client.upload_file(str(CORPUS_DIR / rel), CORPUS_BUCKET, f"{CORPUS_PREFIX}/{rel}")
    return f"s3://{CORPUS_BUCKET}/{CORPUS_PREFIX}"


@pytest.fixture(scope="session")
def tess_cube(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TESS-layout cube made with astrocut's CubeFactory, in its own directory."""
    from astropy.utils.exceptions import AstropyDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyDeprecationWarning)
        from cloudfits.testing.tess import make_tess_cube

        directory = tmp_path_factory.mktemp("tess-data")
        return make_tess_cube(directory, n_frames=TESS_FRAMES, shape=TESS_SHAPE)


@pytest.fixture(scope="session")
def tess_bucket(s3_server: S3Server, tess_cube: Path) -> str:
    """The cube at ``s3://stpubdata/tess/public/mast/``, as in the public bucket."""
    s3_server.create_bucket("stpubdata")
    s3_server.create_bucket("tess-fits-cloud-index")
    s3_server.client().upload_file(
        str(tess_cube), "stpubdata", f"tess/public/mast/{tess_cube.name}"
    )
    return "s3://stpubdata/tess/public/mast"
