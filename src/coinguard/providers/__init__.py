"""The built-in provider profiles, one module per provider.

Each module reads like a filled-in form, the same fields in the same order: where the API lives,
how the key is sent, its plans (quota policies, with where each number comes from), which
routes are reads or trades, its error codes and what each means, its key-info check. Adding a
provider is copying a form. :class:`coinguard.Provider` stays the way to describe any other API.

>>> from coinguard.providers import names
>>> names()
['binance', 'coinbase', 'coingecko', 'coingecko-pro', 'coinmarketcap', 'generic', 'kraken',
 'sandbox', 'tokenmetrics']
"""

from __future__ import annotations

from .._exceptions import ConfigurationError
from .._provider import Provider
from . import binance, coinbase, coingecko, coinmarketcap, generic, kraken, sandbox, tokenmetrics

__all__ = ["lookup", "names"]

_PROFILES: dict[str, Provider] = {
    p.name: p
    for p in (
        tokenmetrics.PROFILE,
        coingecko.PROFILE,
        coingecko.PRO,
        coinmarketcap.PROFILE,
        binance.PROFILE,
        coinbase.PROFILE,
        kraken.PROFILE,
        sandbox.PROFILE,
        generic.PROFILE,
    )
}


def names() -> list[str]:
    """The names :func:`coinguard.get_provider` knows."""
    return sorted(_PROFILES)


def lookup(name: str) -> Provider:
    """The profile called ``name``, set to its default plan."""
    if not isinstance(name, str):
        raise ConfigurationError(f"a provider name is a string, not {type(name).__name__}")
    try:
        return _PROFILES[name.strip().lower()]
    except KeyError:
        known = ", ".join(names())
        raise ConfigurationError(f"unknown provider {name!r}; built-in: {known}") from None
