"""Least privilege, verified: ask the provider what a key can do, and judge it (sans-I/O).

Each provider supplies a :class:`KeyCheck` (the key-info route and a parser of its answer into
:class:`KeyPermissions`). A read key that can trade or withdraw, or a trade key that can
withdraw, is a finding.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._exceptions import (
    ConfigurationError,
    KeyAgeWarning,
    KeyPrivilegeWarning,
    OverPrivilegedKeyError,
)
from ._keys import KeyMetadata
from ._secrets._cache import check_age

__all__ = [
    "KeyCheck",
    "KeyPermissions",
    "KeyReport",
    "Usage",
    "binance_api_restrictions",
    "coinbase_key_permissions",
    "judge",
    "kraken_api_key_info",
    "parse_time",
    "report",
    "sandbox_key_info",
]

log = logging.getLogger("coinguard.keys")


@dataclass(frozen=True)
class Usage:
    """One of the key's limits as the provider reports it (None where it does not say)."""

    window: str
    used: int | None
    limit: int | None
    resets_at: datetime | None = None
    seconds: float | None = None  # the window's length: 60, 86400, a month; None if unknown

    def __str__(self) -> str:
        limit = "?" if self.limit is None else f"{self.limit:,}"
        used = "?" if self.used is None else f"{self.used:,}"
        when = f", resets {self.resets_at:%Y-%m-%d %H:%M} UTC" if self.resets_at else ""
        return f"{self.window}: {used} of {limit} used{when}"


@dataclass(frozen=True)
class KeyPermissions:
    """What a key may do according to the provider, and what the provider says of its plan.

    ``note`` says what could not be checked (a provider with no key-info route: the key was
    seen to authenticate, its scopes were not).
    """

    can_read: bool
    can_trade: bool
    can_withdraw: bool
    created_at: datetime | None = None
    expires_at: datetime | None = None
    plan: str | None = None
    usage: tuple[Usage, ...] = ()
    note: str = ""
    ip_restricted: bool | None = None  # None: the provider does not say


@dataclass(frozen=True)
class KeyCheck:
    """How to ask one provider about a key: the route and a parser of the decoded answer.

    >>> check = KeyCheck("GET", "/key", sandbox_key_info)
    >>> check.parse({"data": {"scopes": ["read"]}}).can_trade
    False
    """

    method: str
    path: str
    parse: Callable[[Any], KeyPermissions]
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class KeyReport:
    """The verdict for one scope's key: its fingerprint, permissions and findings."""

    scope: str
    fingerprint: str
    permissions: KeyPermissions
    findings: tuple[str, ...] = field(default=())
    age_findings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the key can do what its scope needs and nothing more dangerous."""
        return not self.findings


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 text (``Z`` allowed) as a UTC-aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _data(body: Any) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        inner = body.get("data", body)
        if isinstance(inner, Mapping):
            return inner
    raise ConfigurationError("the key-info answer is not a JSON object")


def sandbox_key_info(body: Any) -> KeyPermissions:
    """Parse the sandbox's (Token-Metrics-style) ``GET /key`` answer."""
    data = _data(body)
    scopes = {str(s) for s in data.get("scopes") or ()}
    return KeyPermissions(
        can_read="read" in scopes,
        can_trade="trade" in scopes,
        can_withdraw="withdraw" in scopes,
        created_at=parse_time(data.get("created_at")),
        expires_at=parse_time(data.get("expires_at")),
    )


def binance_api_restrictions(body: Any) -> KeyPermissions:
    """Parse Binance ``GET /sapi/v1/account/apiRestrictions``."""
    data = _data(body)
    trade_flags = (
        "enableSpotAndMarginTrading",
        "enableFixApiTrade",
        "enableFutures",
        "enableMargin",
        "enableVanillaOptions",
        "enablePortfolioMarginTrading",
    )
    # each of these moves funds out of the spot account, which no trading needs
    move_flags = ("enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer")
    restricted = data.get("ipRestrict")
    return KeyPermissions(
        can_read=bool(data.get("enableReading")),
        can_trade=any(bool(data.get(flag)) for flag in trade_flags),
        can_withdraw=any(bool(data.get(flag)) for flag in move_flags),
        created_at=_ms(data.get("createTime")),
        expires_at=_ms(data.get("tradingAuthorityExpirationTime")),
        ip_restricted=restricted if isinstance(restricted, bool) else None,
    )


def _ms(value: Any) -> datetime | None:
    """Epoch milliseconds as a UTC datetime, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, timezone.utc)


def kraken_api_key_info(body: Any) -> KeyPermissions:
    """Parse Kraken ``POST /0/private/GetApiKeyInfo`` (``{"error": [], "result": {...}}``).

    >>> perms = kraken_api_key_info({"error": [], "result": {
    ...     "permissions": ["query-funds", "withdraw-funds"], "createdTime": "1772542900",
    ...     "validUntil": "0", "ipAllowlist": []}})
    >>> perms.can_withdraw, perms.can_trade, perms.expires_at, perms.ip_restricted
    (True, False, None, False)
    """
    data = body.get("result") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        raise ConfigurationError("the key-info answer has no 'result' object")
    granted = {str(p) for p in data.get("permissions") or ()}
    allowlist = data.get("ipAllowlist")
    return KeyPermissions(
        can_read=any(p.startswith("query-") for p in granted),
        can_trade=bool(granted & {"modify-trades", "cancel-close-trades"}),
        can_withdraw="withdraw-funds" in granted,
        created_at=_epoch_text(data.get("createdTime")),
        expires_at=_epoch_text(data.get("validUntil")),
        ip_restricted=bool(allowlist) if isinstance(allowlist, list) else None,
    )


def _epoch_text(value: Any) -> datetime | None:
    """Epoch seconds written as text (``"0"``: never) as a UTC datetime, or None."""
    try:
        seconds = int(str(value))
    except ValueError:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds > 0 else None


def coinbase_key_permissions(body: Any) -> KeyPermissions:
    """Parse Coinbase Advanced Trade ``GET /api/v3/brokerage/key_permissions``."""
    data = _data(body)
    return KeyPermissions(
        can_read=bool(data.get("can_view")),
        can_trade=bool(data.get("can_trade")),
        can_withdraw=bool(data.get("can_transfer")),
    )


def findings_for(scope: str, perms: KeyPermissions) -> tuple[str, ...]:
    """What is wrong with a key of this scope having these permissions."""
    found = []
    if scope == "read":
        if perms.can_trade:
            found.append("the read key can trade")
        if perms.can_withdraw:
            found.append("the read key can withdraw")
    else:
        if perms.can_withdraw:
            found.append("the trade key can withdraw")
        if perms.ip_restricted is False:
            found.append("the trade key is not restricted to trusted IP addresses")
    return tuple(found)


def report(
    scope: str, fingerprint: str, perms: KeyPermissions, *, max_age: timedelta, now: datetime
) -> KeyReport:
    """Judge one key: privilege findings for its scope, and the key-age policy."""
    meta = KeyMetadata(created_at=perms.created_at, expires_at=perms.expires_at)
    return KeyReport(
        scope=scope,
        fingerprint=fingerprint,
        permissions=perms,
        findings=findings_for(scope, perms),
        age_findings=tuple(check_age(meta, max_age=max_age, now=now)),
    )


def _log(message: str, *, warned: bool) -> None:
    # Without any logging configuration, logging's last-resort handler prints to stderr just
    # as the warning does: the same finding would show twice. The warning alone says it then.
    if warned and not log.hasHandlers():
        return
    log.warning("%s", message)


def judge(
    reports: list[KeyReport], on_finding: str, hook: Callable[[str], None] | None = None
) -> list[KeyReport]:
    """Raise, warn or just return, according to ``on_finding`` ("raise", "warn" or "ignore").

    Every finding is also logged on ``coinguard.keys`` (unless logging is not configured and
    the finding is warned: then the warning alone shows it, once) and passed to ``hook`` (for
    metrics or alerts). Age findings are always warnings: an old key still works, it should be
    rotated.
    """
    for r in reports:
        for finding in r.age_findings:
            message = f"the {r.scope} key {r.fingerprint}: {finding}"
            _log(message, warned=True)
            if hook is not None:
                hook(message)
            warnings.warn(message, KeyAgeWarning, stacklevel=3)
    bad = [r for r in reports if r.findings]
    for r in bad:
        message = f"the {r.scope} key {r.fingerprint}: {'; '.join(r.findings)}"
        _log(message, warned=on_finding == "warn")
        if hook is not None:
            hook(message)
    if bad and on_finding == "raise":
        raise OverPrivilegedKeyError(
            "; ".join(f"{'; '.join(r.findings)} (key {r.fingerprint})" for r in bad)
            + ". Create a key with only the permissions its scope needs"
        )
    if bad and on_finding == "warn":
        for r in bad:
            warnings.warn(
                f"{'; '.join(r.findings)} (key {r.fingerprint})", KeyPrivilegeWarning, stacklevel=3
            )
    return reports
