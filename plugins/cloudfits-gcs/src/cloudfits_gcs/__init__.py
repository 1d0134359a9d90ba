"""Google Cloud Storage for cloudfits: ``gs://bucket/key``.

Installed, this distribution registers the ``gcs`` provider through the ``cloudfits``
entry point group. The Google SDK is imported only when a ``gs://`` URI is first used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cloudfits import ProviderSpec
from cloudfits.providers import kit

__all__ = ["GCSConfig", "cloudfits_register_providers"]
__version__ = "0.1.0"


@dataclass(frozen=True, kw_only=True)
class GCSConfig:
    """Options of the ``gcs`` provider.

    Credentials come from the environment: google-auth finds them
    (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, the
    metadata server), unless an access ``token`` is given. Without any
    (``anonymous="auto"``), requests are anonymous, which reads public buckets. A token
    never appears in the configuration's ``repr``, in messages or in an index, and is
    sent to the store's endpoint only.

    Attributes
    ----------
    project : str or None
        The project of the client (default: the credentials' or ``GOOGLE_CLOUD_PROJECT``).
    billing_project : str or None
        The project billed for requests to a requester-pays bucket (GCS's
        ``userProject``); sent on every request when set.
    endpoint_url : str or None
        Another endpoint (an emulator); default ``STORAGE_EMULATOR_HOST``, else Google's.
    token : str or None
        An OAuth 2.0 access token (``gcloud auth print-access-token``), sent as
        ``Authorization: Bearer``; it is not refreshed, so it serves until it expires.
    anonymous : bool or "auto"
        ``"auto"`` (the default): the ``token`` when given, else Application Default
        Credentials when google-auth finds them, else an anonymous client (one INFO log
        line says so).
        ``True``: no credentials even when the environment has some. ``False``:
        credentials are required, and their absence is an error.
    timeout : float
        Seconds before a request gives up.
    max_pool_connections : int
        Size of the HTTP connection pool; concurrent reads use up to this many.
    list_page_size : int
        Objects per listing request (GCS serves at most 1,000).
    """

    project: str | None = None
    billing_project: str | None = None
    endpoint_url: str | None = None
    token: str | None = field(default=None, repr=False)
    anonymous: bool | Literal["auto"] = "auto"
    timeout: float = 60.0
    max_pool_connections: int = 64
    list_page_size: int = 1000

    def __post_init__(self) -> None:
        kit.check_anonymous(self.anonymous)


_make_provider = kit.lazy_factory("cloudfits_gcs.provider", "GCSProvider")


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="gcs",
        schemes=("gs", "gcs"),
        config_type=GCSConfig,
        factory=_make_provider,
        description="Google Cloud Storage (google-cloud-storage); billing_project for"
        " requester-pays",
    )
)
