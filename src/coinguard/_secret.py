"""The secret type: a key value that cannot be printed, logged or pickled by accident."""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

__all__ = ["Secret", "fingerprint"]


def fingerprint(value: str) -> str:
    """Return a short, stable, non-reversible label for a key value.

    A hash, not a prefix: key prefixes often encode the account or environment, and a prefix
    shortens a brute-force search.

    >>> fingerprint("demo-key")
    'fp:c48a01f49fd0'
    """
    return "fp:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class Secret:
    """A key value hidden from `repr`, `str`, formatting, logging and pickling.

    The value is only read with :meth:`reveal`, at the last moment, inside the auth flow.

    >>> s = Secret("abc123", source="env var COINGUARD_READ_KEY")
    >>> s
    Secret(fp:6ca13d52ca70, from env var COINGUARD_READ_KEY)
    >>> s.reveal()
    'abc123'
    """

    __slots__ = ("__weakref__", "_fingerprint", "_source", "_value")

    def __init__(self, value: str, *, source: str = "argument") -> None:
        self._value = value
        self._source = source
        self._fingerprint = fingerprint(value)

    def reveal(self) -> str:
        """Return the raw key value. Call only where it is put on the wire."""
        return self._value

    @property
    def fingerprint(self) -> str:
        """A short hash of the value, safe for logs."""
        return self._fingerprint

    @property
    def source(self) -> str:
        """Where the value came from (a variable name, file path or secret reference)."""
        return self._source

    def __repr__(self) -> str:
        return f"Secret({self._fingerprint}, from {self._source})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._fingerprint == other._fingerprint and self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __reduce__(self) -> NoReturn:
        raise TypeError("coinguard.Secret cannot be pickled: it would write the key in clear")

    def __getstate__(self) -> Any:
        raise TypeError("coinguard.Secret cannot be pickled: it would write the key in clear")
