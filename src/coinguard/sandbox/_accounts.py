"""Provisioned keys: scopes, account, age, expiry, rotation and revocation."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from .._secret import fingerprint

__all__ = ["KeyRecord", "KeyStore", "Keys"]

_DAY = 86_400.0


@dataclass(frozen=True)
class Keys:
    """The key values provisioned at start. Throwaway values, but still not in ``repr``.

    Token-Metrics-style profile: ``read`` has ``["read"]``; ``trade`` has ``["trade"]`` only,
    so a trade key on a read route gets 403; ``overprivileged`` has
    ``["read", "trade", "withdraw"]``. The provider emulations have no scopes: for
    ``coingecko`` ``read`` is the Demo key and ``pro`` the Pro key, for ``coinmarketcap``
    ``read`` is the key; the other fields are ``None``. For ``binance`` every key has its
    signing secret in ``<name>_secret``: ``read`` (reading only), ``trade`` (reading and spot
    trading, IP-restricted), ``overprivileged`` (trading and withdrawals), ``unrestricted``
    (trading, no IP restriction) and ``ed25519`` (a trade key whose secret is an Ed25519
    private key in PEM). For ``coinbase`` the keys are CDP key names and each secret a
    private key: ``read``, ``trade``, ``overprivileged`` (EC PEM) and ``ed25519`` (base64).
    """

    read: str = field(repr=False)
    trade: str | None = field(default=None, repr=False)
    overprivileged: str | None = field(default=None, repr=False)
    pro: str | None = field(default=None, repr=False)
    unrestricted: str | None = field(default=None, repr=False)
    ed25519: str | None = field(default=None, repr=False)
    read_secret: str | None = field(default=None, repr=False)
    trade_secret: str | None = field(default=None, repr=False)
    overprivileged_secret: str | None = field(default=None, repr=False)
    unrestricted_secret: str | None = field(default=None, repr=False)
    ed25519_secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = {
            name: fingerprint(value) for name, value in vars(self).items() if isinstance(value, str)
        }
        return "Keys(" + ", ".join(f"{name}={fp}" for name, fp in shown.items()) + ")"


@dataclass(frozen=True)
class KeyRecord:
    """What the server knows about one key value."""

    value: str = field(repr=False)
    fingerprint: str
    account: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None
    valid_until: float | None = None

    def usable(self, now: float) -> bool:
        """Whether the key authenticates at ``now`` (not expired, not past its revocation)."""
        if self.expires_at is not None and now >= self.expires_at:
            return False
        return self.valid_until is None or now < self.valid_until


class KeyStore:
    """Key values to records. Not thread-safe: the caller holds the lock."""

    def __init__(self, ttl_days: float | None, new_value: Callable[[], str] | None = None) -> None:
        self._ttl = None if ttl_days is None else ttl_days * _DAY
        self._records: dict[str, KeyRecord] = {}
        self._new_value = new_value or _sandbox_value

    def issue(
        self, scopes: Iterable[str], account: str, now: float, *, age_days: float = 0.0
    ) -> KeyRecord:
        """Create a fresh random key for ``account``, created ``age_days`` before ``now``."""
        value = self._new_value()
        created = now - age_days * _DAY
        expires = None if self._ttl is None else created + self._ttl
        record = KeyRecord(value, fingerprint(value), account, tuple(scopes), created, expires)
        self._records[value] = record
        return record

    def lookup(self, value: str, now: float) -> KeyRecord | None:
        """The record of a usable key, or ``None`` for unknown, expired or revoked keys."""
        record = self._records.get(value)
        return record if record is not None and record.usable(now) else None

    def rotate(self, value: str, overlap: float, now: float) -> KeyRecord:
        """Issue a successor on the same account and scopes; the old key dies after ``overlap``."""
        old = self._known(value)
        new = self.issue(old.scopes, old.account, now)
        until = now + max(0.0, overlap)
        if old.valid_until is None or old.valid_until > until:
            self._records[value] = replace(old, valid_until=until)
        return new

    def revoke(self, value: str, now: float) -> None:
        """Make ``value`` stop authenticating now."""
        self._records[value] = replace(self._known(value), valid_until=now)

    def account_of(self, value: str) -> str:
        """The account of a known key, usable or not."""
        return self._known(value).account

    def _known(self, value: str) -> KeyRecord:
        record = self._records.get(value)
        if record is None:
            raise KeyError(f"unknown sandbox key {fingerprint(value)}")
        return record


def _sandbox_value() -> str:
    return "sbx_" + secrets.token_urlsafe(24)
