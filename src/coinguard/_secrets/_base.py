"""What every secret backend shares: the backend seam, reference parsing, optional imports.

A backend does the I/O for one reference and nothing else: :meth:`Backend.fetch` returns the raw
value, :meth:`Backend.metadata` what the store knows about it. Caching, validation, single-flight
refreshes and age warnings live in :mod:`coinguard._secrets._cache`, once for all backends.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from .._exceptions import ConfigurationError, KeyAgeWarning, Reason, SecretBackendError
from .._keys import KeyMetadata

__all__ = [
    "Backend",
    "KeyAgeWarning",
    "ParsedRef",
    "Reason",
    "SecretBackendError",
    "import_extra",
    "parse_ref",
]


class Backend(Protocol):
    """One secret store, bound to one reference. Does the I/O; no caching, no validation."""

    @property
    def reference(self) -> str:
        """The reference text, e.g. ``aws-sm://prod/tm#read_key``. Never the value."""
        ...

    @property
    def local(self) -> bool:
        """True for cheap offline stores (variables, files)."""
        ...

    def fetch(self) -> str:
        """Return the raw value, or raise :class:`SecretBackendError`."""
        ...

    def metadata(self) -> KeyMetadata | None:
        """Return what the store knows about the key's age, or None when it keeps nothing."""
        ...


@dataclass(frozen=True)
class ParsedRef:
    """A reference split into ``scheme://path?query#fragment``; query and fragment in any order."""

    text: str
    scheme: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    fragment: str | None = None


def parse_ref(text: str) -> ParsedRef:
    """Split a reference without URL-decoding it (secret names may hold ``%`` or ``:``).

    >>> parse_ref("aws-sm://prod/tm#read_key?region=eu-west-1")
    ParsedRef(text='aws-sm://prod/tm#read_key?region=eu-west-1', scheme='aws-sm', \
path='prod/tm', query={'region': 'eu-west-1'}, fragment='read_key')
    """
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme:
        raise ConfigurationError(
            f"secret reference {text!r} has no scheme; write e.g. env://VAR or aws-sm://id#field"
        )
    # Both `id?q#f` (URL order) and `id#f?q` (the order people type) are accepted.
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    path, tail = rest[:cut], rest[cut:]
    query: dict[str, str] = {}
    fragment: str | None = None
    while tail:
        mark, tail = tail[0], tail[1:]
        stop = tail.find("#" if mark == "?" else "?")
        part, tail = (tail, "") if stop < 0 else (tail[:stop], tail[stop:])
        if mark == "#":
            fragment = part
        else:
            query.update(_parse_query(text, part))
    return ParsedRef(text=text, scheme=scheme.lower(), path=path, query=query, fragment=fragment)


def _parse_query(text: str, part: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, part.split("&")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigurationError(f"secret reference {text!r}: option {key!r} needs a value")
        pairs[key] = value
    return pairs


def check_options(ref: ParsedRef, allowed: set[str]) -> None:
    """Refuse unknown ``?options`` so a typo (``?regoin=``) is not silently ignored."""
    unknown = sorted(set(ref.query) - allowed)
    if unknown:
        raise ConfigurationError(
            f"secret reference {ref.text!r}: unknown option(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )


# The distribution a user knows by name, per extra: "botocore.exceptions" means nothing to
# someone who has never installed boto3.
_LIBRARY = {
    "aws": "boto3",
    "vault": "hvac",
    "keyring": "keyring",
    "gcp": "google-cloud-secret-manager",
    "azure": "azure-keyvault-secrets",
}


def import_extra(module: str, extra: str, reference: str) -> ModuleType:
    """Import an optional backend library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        library = _LIBRARY.get(extra, module.partition(".")[0])
        raise ConfigurationError(
            f"secret {reference} needs the {library!r} library; "
            f"run: pip install 'coinguard[{extra}]'"
        ) from None
