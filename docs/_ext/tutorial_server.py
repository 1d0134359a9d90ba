"""The world of the getting-started page, on this machine: no cloud account needed.

`start` runs SeaweedFS on 127.0.0.1, points boto3 at it through the environment (as
an AWS configuration points it at AWS), builds a TESS-layout cube with astrocut's
``CubeFactory`` in a local directory, and uploads it where the public bucket keeps
it: ``s3://stpubdata/tess/public/mast/``. The page's doctests then run the tutorial's
commands against it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from astropy.utils.exceptions import AstropyDeprecationWarning

from cloudfits.providers.registry import reset_registry
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs

DATA_BUCKET = "stpubdata"
DATA_PREFIX = "tess/public/mast"
INDEX_BUCKET = "tess-fits-cloud-index"
_ENVIRONMENT = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


@dataclass
class Tutorial:
    """The running server and the local copy of the data."""

    server: S3Server
    workdir: Path
    data_dir: Path
    cube: Path
    saved: dict[str, str | None] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the server, restore the environment, delete the files."""
        self.server.stop()
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_registry()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start(*, frames: int = 20, size: int = 64) -> Tutorial:
    """Start the local S3 server and put a TESS cube in ``s3://stpubdata/tess/public/mast``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyDeprecationWarning)  # astrocut's imports
        from cloudfits.testing.tess import make_tess_cube

        workdir = Path(tempfile.mkdtemp(prefix="cloudfits-docs-"))
        data_dir = workdir / "tess-data"
        data_dir.mkdir()
        cube = make_tess_cube(data_dir, n_frames=frames, shape=(size, size))
    server = start_seaweedfs(workdir / "s3")
    saved = {key: os.environ.get(key) for key in _ENVIRONMENT}
    os.environ.update(
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_ACCESS_KEY_ID="docs",
        AWS_SECRET_ACCESS_KEY="docs",
        AWS_DEFAULT_REGION="us-east-1",
    )
    reset_registry()  # provider clients read the environment when they are built
    for bucket in (DATA_BUCKET, INDEX_BUCKET):
        server.create_bucket(bucket)
    server.client().upload_file(str(cube), DATA_BUCKET, f"{DATA_PREFIX}/{cube.name}")
    return Tutorial(server, workdir, data_dir, cube, saved)
