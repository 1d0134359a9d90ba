"""The cloud-fits tutorial through the provider plugins: gcs, azure and libcloud+s3.

``cloudfits-index --provider P`` indexes a local directory and stores the index in a
bucket of that provider; the index is then loaded by bucket name and a cutout read
back, byte-exact against astropy. Each case skips, naming the plugin, when it is not
installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import cloudfits

from ..conftest import TESS_SHAPE

INDEX_BUCKET = "tess-fits-cloud-index"
DATA_BUCKET = "stpubdata"
DATA_PREFIX = "tess/public/mast"
PLUGINS = {"gcs": "cloudfits_gcs", "azure": "cloudfits_azure", "libcloud+s3": "cloudfits_libcloud"}


def _store(provider: str, request: pytest.FixtureRequest, cube: Path) -> str:
    """Put the cube in the provider's local server; return the data URI."""
    pytest.importorskip(PLUGINS[provider], reason=f"the {provider} plugin is not installed")
    key = f"{DATA_PREFIX}/{cube.name}"
    if provider == "gcs":
        gcs = request.getfixturevalue("gcs_server")
        for name in (DATA_BUCKET, INDEX_BUCKET):
            gcs.create_bucket(name)
        gcs.client().bucket(DATA_BUCKET).blob(key).upload_from_filename(str(cube))
        return f"gs://{DATA_BUCKET}/{DATA_PREFIX}"
    if provider == "azure":
        azurite = request.getfixturevalue("azurite")
        for name in (DATA_BUCKET, INDEX_BUCKET):
            azurite.create_container(name)
        container = azurite.service_client().get_container_client(DATA_BUCKET)
        container.upload_blob(key, cube.read_bytes(), overwrite=True)
        return f"az://{DATA_BUCKET}/{DATA_PREFIX}"
    # libcloud's S3 driver against SeaweedFS, credentials and endpoint from AWS_*.
    request.getfixturevalue("tess_bucket")
    return f"libcloud+s3://{DATA_BUCKET}/{DATA_PREFIX}"


def _run_index(args: list[str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "cloudfits-index"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, check=False, env=dict(os.environ)
    )


@pytest.mark.parametrize("provider", list(PLUGINS))
def test_tutorial_flow_through_a_plugin(
    provider: str, request: pytest.FixtureRequest, tess_cube: Path
) -> None:
    data_uri = _store(provider, request, tess_cube)
    index_name = f"index-{provider.replace('+', '-')}.json"
    args = [
        "--provider", provider,
        "--index-bucket-name", INDEX_BUCKET,
        "--index-name", index_name,
        "--fits-files-directory", str(tess_cube.parent),
        "--data-bucket-path", data_uri,
    ]  # fmt: skip
    result = _run_index(args)
    assert result.returncode == 0, result.stderr
    scheme = data_uri.split("://")[0]
    assert f"{scheme}://{INDEX_BUCKET}/{index_name}" in result.stdout

    index = cloudfits.download_index(INDEX_BUCKET, provider=provider, name=index_name)
    assert index.data_uri == data_uri
    assert index.paths == [tess_cube.name]
    with fits.open(tess_cube) as hdul:
        assert index.headers[2][0, 10] == hdul[2].data[0][10]
        f = index.open(tess_cube.name)
        rows, _cols = TESS_SHAPE
        cutout = f[1].section[20:30, 30:40, :, :]
        assert (
            cutout.tobytes()
            == np.ascontiguousarray(hdul[1].data[20:30, 30:40, :, :]).astype(cutout.dtype).tobytes()
        )
        assert np.array_equal(
            f[1].section[rows - 3 :, :4, 5, 0], hdul[1].data[rows - 3 :, :4, 5, 0]
        )
        table = f[2].read(rows=slice(0, 10), columns=["TSTART", "TSTOP"])
        expected = Table.read(hdul[2])[0:10]
        assert np.array_equal(table["TSTART"], expected["TSTART"])
        assert f.stats.requests > 0


@pytest.mark.parametrize("provider", ["gcs", "azure"])
def test_remote_prefix_indexes_through_a_plugin(
    provider: str, request: pytest.FixtureRequest, tess_cube: Path
) -> None:
    """Indexing the remote prefix itself (headers only) gives the local index's layout."""
    data_uri = _store(provider, request, tess_cube)
    remote = cloudfits.build_index(data_uri + "/")
    local = cloudfits.build_index(tess_cube.parent, data_uri=data_uri)
    assert [f.hdus for f in remote.files] == [f.hdus for f in local.files]
    assert remote.files[0].size == tess_cube.stat().st_size
    assert remote.files[0].etag
