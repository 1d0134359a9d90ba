"""Azure Blob storage for cloudfits: ``az://container/blob``.

Installed, this distribution registers the ``azure`` provider through the ``cloudfits``
entry point group. The Azure SDK is imported only when an ``az://`` URI is first used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cloudfits import ProviderSpec
from cloudfits.providers import kit

__all__ = ["AzureConfig", "cloudfits_register_providers"]
__version__ = "0.1.0"


@dataclass(frozen=True, kw_only=True)
class AzureConfig:
    """Options of the ``azure`` provider.

    Every option left unset falls back to the usual environment variable:
    ``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT`` (or
    ``AZURE_STORAGE_ACCOUNT_NAME``), ``AZURE_STORAGE_ACCOUNT_URL``, ``AZURE_STORAGE_KEY``
    (or ``AZURE_STORAGE_ACCOUNT_KEY``) and ``AZURE_STORAGE_SAS_TOKEN``. Given an account
    and no secret, requests are anonymous (public containers). Secrets never appear in
    the configuration's ``repr`` nor in error messages.

    Attributes
    ----------
    account_name : str or None
        The storage account; its URL is ``https://ACCOUNT.blob.core.windows.net``.
    account_url : str or None
        The blob service URL, for another cloud or an emulator.
    connection_string : str or None
        A full connection string (account, key or SAS, endpoints).
    account_key : str or None
        The account's shared key.
    sas_token : str or None
        A shared access signature.
    anonymous : bool or "auto"
        ``"auto"`` (the default): the key, SAS or connection string found in the options
        or the environment, and no credentials when there is none (public containers;
        one INFO log line says so). ``True``: no credentials, whatever the environment
        holds. ``False``: a credential is required, and its absence is an error.
    max_pool_connections : int
        Size of the HTTP connection pool; concurrent reads use up to this many.
    timeout : float
        Seconds before a connection attempt or a read gives up.
    list_page_size : int
        Blobs per listing request (Azure serves at most 5,000).
    """

    account_name: str | None = None
    account_url: str | None = None
    connection_string: str | None = field(default=None, repr=False)
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    anonymous: bool | Literal["auto"] = "auto"
    max_pool_connections: int = 64
    timeout: float = 60.0
    list_page_size: int = 5000

    def __post_init__(self) -> None:
        kit.check_anonymous(self.anonymous)


_make_provider = kit.lazy_factory("cloudfits_azure.provider", "AzureProvider")


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="azure",
        schemes=("az", "azure"),
        config_type=AzureConfig,
        factory=_make_provider,
        description="Azure Blob storage (azure-storage-blob); key, SAS or anonymous",
    )
)
