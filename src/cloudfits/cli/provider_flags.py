"""Command-line flags made from the providers' config dataclasses.

Every option of every registered provider's config becomes a flag: ``billing_project``
is ``--billing-project``, ``account_url`` is ``--account-url``. ``--help`` shows them in
one argument group per provider, each flag under the first provider that has it (the
built-ins first) and named again in the description of every other provider that takes
it. The flag's type follows the field's: a bool is a switch (``--no-NAME`` when it is on
by default), an int, float or str takes a value, a mapping takes ``KEY=VALUE`` (repeated).
The help is the field's ``metadata["help"]`` where it has one, else the first sentence
of its entry in the config's numpydoc ``Attributes`` section. Secrets
(``field(repr=False)``) may be given as flags, but their values are never printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..providers.base import ProviderSpec
from ..providers.registry import DEFAULT_PLUGINS, get_registry

__all__ = ["ProviderFlag", "add_provider_arguments", "flag_table", "provider_flags"]

logger = logging.getLogger(__name__)

_ATTRIBUTE = re.compile(r"^(\w+(?:,\s*\w+)*)\s*:")
_ADDED = "provider_options_added"  # the namespace attribute listing the flags a parser has


@dataclass(frozen=True)
class ProviderFlag:
    """One generated flag.

    Attributes
    ----------
    name : str
        The config field (and ``argparse`` destination), ``"billing_project"``.
    kind : str
        ``"switch"``, ``"negated"`` (a bool that is on by default), ``"int"``,
        ``"float"``, ``"str"`` or ``"mapping"``.
    providers : tuple of str
        The providers whose config has the field, the one it is shown under first.
    help : str
        The help line (the providers in brackets, then the field's description).
    secret : bool
        Whether the field holds a credential (declared with ``repr=False``).
    """

    name: str
    kind: str
    providers: tuple[str, ...]
    help: str
    secret: bool

    @property
    def option(self) -> str:
        """The flag as typed: ``--billing-project``, or ``--no-verify`` for a negated bool."""
        flag = self.name.replace("_", "-")
        return f"--no-{flag}" if self.kind == "negated" else f"--{flag}"


def _ordered_specs() -> list[ProviderSpec]:
    """The built-ins in their registration order, then the plugins by name."""

    def key(spec: ProviderSpec) -> tuple[int, str]:
        module = spec.factory.__module__
        for i, name in enumerate(DEFAULT_PLUGINS):
            if module == name or module.startswith(name + "."):
                return i, spec.name
        return len(DEFAULT_PLUGINS), spec.name

    return sorted(get_registry().specs(), key=key)


def _descriptions(config_type: type) -> dict[str, str]:
    """The first sentence of each entry of the numpydoc ``Attributes`` sections of the
    config and its bases (`cloudfits.providers.kit.ClientOptions`), the class's own first."""
    found: dict[str, str] = {}
    for cls in config_type.__mro__:
        for name, text in _own_descriptions(cls).items():
            if name not in found or found[name].startswith("The client options"):
                found[name] = text
    return found


def _own_descriptions(config_type: type) -> dict[str, str]:
    doc = config_type.__dict__.get("__doc__") or ""
    lines = doc.expandtabs().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes")
    except StopIteration:
        return {}
    found: dict[str, str] = {}
    names: list[str] = []
    text: list[str] = []

    def flush() -> None:
        sentence = " ".join(text).split(". ")[0].strip().rstrip(".")
        sentence = sentence.replace("``", "").replace("`", "")
        for name in names:
            found.setdefault(name, sentence)

    for line in lines[start + 2 :]:
        stripped = line.strip()
        match = _ATTRIBUTE.match(stripped)
        if match and len(line) - len(line.lstrip()) <= 4:
            flush()
            names = [n.strip() for n in match.group(1).split(",")]
            text = []
        elif stripped:
            text.append(stripped)
    flush()
    return found


def _kind(config_type: type, field: dataclasses.Field[Any]) -> str:
    try:
        hint = typing.get_type_hints(config_type)[field.name]
    except Exception:  # a hint that names something only imported for type checking
        hint = field.type
    text = str(hint)
    args = set(typing.get_args(hint)) | {hint}
    if bool in args or text.startswith("bool"):
        return "negated" if field.default is True else "switch"
    if (
        "Mapping" in text
        or "dict" in text
        or any(isinstance(a, type) and issubclass(a, Mapping) for a in args)
    ):
        return "mapping"
    for name, kind in ((int, "int"), (float, "float")):
        if name in args:
            return kind
    return "str"


def flag_table() -> list[ProviderFlag]:
    """Every generated flag, in the order ``--help`` shows them."""
    flags: dict[str, ProviderFlag] = {}
    for spec in _ordered_specs():
        described = _descriptions(spec.config_type)
        for field in dataclasses.fields(spec.config_type):
            seen = flags.get(field.name)
            if seen is not None:
                providers = (*seen.providers, spec.name)
                flags[field.name] = dataclasses.replace(
                    seen,
                    providers=providers,
                    help=f"[{', '.join(providers)}] {seen.help.split('] ', 1)[1]}",
                )
                continue
            kind = _kind(spec.config_type, field)
            about = (
                field.metadata.get("help")
                or described.get(field.name)
                or f"the {field.name} option"
            )
            if kind == "negated":
                about = f"turn off: {about}"
            if not field.repr:
                about += " (a secret: never shown)"
            flags[field.name] = ProviderFlag(
                name=field.name,
                kind=kind,
                providers=(spec.name,),
                help=f"[{spec.name}] {about}",
                secret=not field.repr,
            )
    return list(flags.values())


class _KeyValue(argparse.Action):
    """``--headers Authorization="Bearer x"``, repeated: a dict."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        key, sep, value = str(values).partition("=")
        if not sep or not key:
            # The value may be a secret: the message names the flag only.
            raise argparse.ArgumentError(self, "expected KEY=VALUE")
        found = dict(getattr(namespace, self.dest, None) or {})
        found[key.strip()] = value
        setattr(namespace, self.dest, found)


def _add(group: Any, flag: ProviderFlag) -> None:
    shown = flag.help.replace("%", "%%")  # argparse formats help strings with %
    kwargs: dict[str, Any] = {"dest": flag.name, "default": None, "help": shown}
    if flag.kind == "switch":
        kwargs.update(action="store_const", const=True)
    elif flag.kind == "negated":
        kwargs.update(action="store_const", const=False)
    elif flag.kind == "mapping":
        kwargs.update(action=_KeyValue, metavar="KEY=VALUE")
    else:
        kwargs.update(type={"int": int, "float": float, "str": str}[flag.kind])
        if flag.secret:
            kwargs["metavar"] = "SECRET"
    group.add_argument(flag.option, **kwargs)


def add_provider_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one argument group per provider with the flags of its config's options.

    An unset flag stays None, so only what the command line gives reaches a provider
    (see `provider_flags`). A flag that would clash with one the command already has
    is left out (the option can still be given from Python).
    """
    table = flag_table()
    by_name = {f.name: f for f in table}
    added: list[str] = []
    for spec in _ordered_specs():
        schemes = ", ".join(f"{s}://" for s in spec.schemes)
        own = [f for f in table if f.providers[0] == spec.name]
        shared = [
            by_name[f.name].option
            for f in dataclasses.fields(spec.config_type)
            if by_name[f.name].providers[0] != spec.name
        ]
        description = f"{spec.description} ({schemes})." if spec.description else schemes
        if shared:
            description += f" Also takes {', '.join(shared)} (above)."
        group = parser.add_argument_group(
            f"{spec.name} provider options",
            textwrap.fill(
                description.replace("%", "%%"), 76, break_on_hyphens=False, break_long_words=False
            ),
        )
        for flag in own:
            try:
                _add(group, flag)
            except argparse.ArgumentError:
                logger.debug("provider flag %s clashes with a flag of the command", flag.option)
                continue
            added.append(flag.name)
    parser.set_defaults(**{_ADDED: tuple(added)})


def provider_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The provider options given on the command line, as keyword options."""
    names = getattr(args, _ADDED, None)
    if names is None:  # a namespace made without add_provider_arguments
        names = [f.name for f in flag_table()]
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
