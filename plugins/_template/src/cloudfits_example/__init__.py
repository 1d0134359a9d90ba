"""A minimal cloudfits provider plugin: ``example://PATH`` over a local directory.

Copy this package to start a provider of your own. The module the entry point names
(this one) should stay light: it defines the options and registers the provider; the
implementation (and your storage SDK) is imported only when a URI is first used.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudfits import ProviderSpec
from cloudfits.providers import kit

__all__ = ["ExampleConfig", "cloudfits_register_providers"]
__version__ = "0.1.0"


@dataclass(frozen=True, kw_only=True)
class ExampleConfig:
    """Options of the ``example`` provider (keyword-only; unknown ones are refused).

    Attributes
    ----------
    root : str
        The directory ``example://`` paths are relative to.
    """

    root: str = "."


# The implementation (and the SDK) is imported when the first provider is made.
_make_provider = kit.lazy_factory("cloudfits_example.provider", "ExampleProvider")


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="example",
        schemes=("example",),
        config_type=ExampleConfig,
        factory=_make_provider,
        description="files below a local directory (the plugin template)",
    )
)
