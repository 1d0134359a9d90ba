"""``s3://bucket/key`` through boto3, with requester-pays as an explicit opt-in.

This module holds the options and the registration; boto3 is imported by
`cloudfits.providers.s3.client` when the first ``s3://`` provider is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .. import kit
from ..base import ProviderSpec

if TYPE_CHECKING:
    from .client import S3Provider

__all__ = ["S3Config", "S3Provider", "check_anonymous", "split_bucket_key"]


@dataclass(frozen=True, kw_only=True)
class S3Config(kit.ClientOptions):
    """Options of the S3 provider.

    Credentials are never options: boto3 finds them in the usual places (environment
    variables ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, the
    shared credentials file, a profile, instance roles). ``AWS_ENDPOINT_URL``,
    ``AWS_DEFAULT_REGION`` and ``AWS_PROFILE`` are honoured as boto3 honours them.

    Attributes
    ----------
    requester_pays : bool
        Send ``x-amz-request-payer: requester`` on every request, accepting the charges
        of a requester-pays bucket. Off unless asked for.
    endpoint_url : str or None
        Another S3-compatible endpoint (default: AWS, or ``AWS_ENDPOINT_URL``).
    region : str or None
        The bucket's region (default: boto3's, else ``us-east-1``).
    profile : str or None
        A named profile of the AWS configuration files.
    anonymous : bool or "auto"
        ``"auto"`` (the default): sign requests when boto3 finds credentials, send them
        unsigned when it finds none (public buckets need no account; one INFO log line
        says so). ``True``: always unsigned. ``False``: always signed, so missing
        credentials are an error. Requester-pays requests are always signed: they bill
        the account that signs them.
    max_pool_connections, connect_timeout, read_timeout, max_attempts
        The client options (`cloudfits.providers.kit.ClientOptions`); ``max_attempts``
        is boto3's standard retry mode.
    presigned_reads : bool
        Read data ranges through one presigned URL per object and a plain urllib3 pool
        (see `cloudfits.providers.s3.presigned`), which saves about 3 ms of CPU per request;
        anything unexpected falls back to boto3. Set False to use boto3 for every read.
    native_reads : bool
        Read the small header runs of indexing through obstore where it keeps the
        provider's promises (see `cloudfits.providers.s3.native`), which saves most
        of the CPU of indexing many objects; anything obstore cannot read takes the
        usual path. Set False to keep every read on the path above.
    """

    requester_pays: bool = False
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    anonymous: bool | Literal["auto"] = field(
        default="auto",
        metadata={"help": "send unsigned requests (public data), whatever credentials are found"},
    )
    presigned_reads: bool = True
    native_reads: bool = True

    def __post_init__(self) -> None:
        check_anonymous(self.anonymous, requester_pays=self.requester_pays)


check_anonymous = kit.check_anonymous


def split_bucket_key(path: str) -> tuple[str, str]:
    """``"bucket/a/b.fits"`` -> ``("bucket", "a/b.fits")``."""
    return kit.split_bucket_key(path, "s3")


_make_provider = kit.lazy_factory(f"{__name__}.client", "S3Provider")
__getattr__ = kit.lazy_attributes(__name__, {"S3Provider": ".client"})


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="s3",
        schemes=("s3",),
        config_type=S3Config,
        factory=_make_provider,
        description="Amazon S3 and S3-compatible stores (boto3); requester-pays opt-in",
    )
)
