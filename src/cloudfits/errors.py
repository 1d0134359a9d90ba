"""The exception hierarchy of cloudfits.

Every error a user can meet derives from `CloudFitsError`. Where a standard library
exception has the same meaning, the cloudfits error also derives from it, so that
``except FileNotFoundError`` keeps working around cloudfits calls.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "CloudFitsError",
    "CloudFitsWarning",
    "FitsFormatError",
    "IndexFormatError",
    "ObjectNotFoundError",
    "ProviderConfigError",
    "ProviderError",
    "ProviderNotFoundError",
    "RangeResponseError",
    "StaleIndexError",
    "TransientProviderError",
    "UnsupportedOperationError",
]


class CloudFitsError(Exception):
    """Base class of every cloudfits error.

    Parameters
    ----------
    *args
        As for `Exception`; the first is the message.
    hint : str, optional
        What the user may do about it, naming Python keywords (``requester_pays=True``).
        ``str(err)`` is the message, then ``"; "`` and the hint. The command line
        rewrites the hint with its flags (``--requester-pays``) before printing it.

    Attributes
    ----------
    hint : str
        The advice, or ``""``.
    """

    def __init__(self, *args: object, hint: str = "") -> None:
        super().__init__(*args)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}; {self.hint}" if self.hint else text


class CloudFitsWarning(UserWarning):
    """Base class of every cloudfits warning."""


class ProviderError(CloudFitsError):
    """A storage provider failed in a way that has no more specific class."""


class ObjectNotFoundError(ProviderError, FileNotFoundError):
    """The object (or local file) does not exist."""


class AccessDeniedError(ProviderError, PermissionError):
    """The store refused access, or a path tried to leave its provider's root."""


class RangeResponseError(ProviderError):
    """A range response did not carry exactly the bytes that were asked for."""


class TransientProviderError(ProviderError):
    """A failure that may pass: throttling (429, ``SlowDown``), a 5xx answer, a reset or
    timed-out connection, a body cut short. The range engine retries these; one reaches
    the caller only when the retry budget of a read is spent."""


class UnsupportedOperationError(ProviderError):
    """The provider cannot do this operation (for example, writing over plain HTTPS)."""


class ProviderNotFoundError(CloudFitsError, LookupError):
    """No provider serves a URI scheme or provider name."""


class ProviderConfigError(CloudFitsError, TypeError):
    """A provider was given an option it does not know, or a value of the wrong kind."""


class FitsFormatError(CloudFitsError, ValueError):
    """The bytes are not valid FITS: truncated, malformed, or inconsistent with their header."""


class IndexFormatError(CloudFitsError, ValueError):
    """An index document is malformed, of an unknown version, or inconsistent."""


class StaleIndexError(CloudFitsError):
    """The object changed since it was indexed (size or ETag differ)."""
