"""The ledger: what the sandbox saw, for tests to assert on. Never holds a key value."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._config import Window

__all__ = ["Ledger", "LedgerEntry", "Violation"]


@dataclass(frozen=True)
class LedgerEntry:
    """One request as the server saw it.

    ``time`` is the server clock at arrival. ``fingerprint`` labels the presented key (``None``
    when none was sent); ``account`` is set only for a valid key. ``path`` never includes the
    query string, so a key sent as ``?api_key=`` is never stored. ``status`` is ``None`` when
    the connection was cut without an answer. ``admitted`` means the request was counted
    against the account's windows, for ``cost`` units. ``credits`` is what the provider
    emulations bill for the answer (CoinGecko: 1 per HTTP 200; CoinMarketCap: its
    ``status.credit_count``); the Token-Metrics-style profile bills none.
    """

    time: float
    request_id: str
    fingerprint: str | None
    account: str | None
    method: str
    path: str
    route: str | None
    scope_required: str | None
    status: int | None
    outcome: str
    admitted: bool
    cost: int
    credits: int = 0


@dataclass(frozen=True)
class Violation:
    """A window that held more than its limit: ``observed`` units in the window ending at ``at``."""

    account: str
    window: Window
    observed: int
    at: float


class Ledger:
    """Thread-safe, append-only record of every request, with queries for tests.

    >>> ledger = Ledger()
    >>> ledger.count()
    0
    """

    def __init__(self, windows: Sequence[Window] = ()) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()
        self._declared = tuple(windows)
        self._by_account: dict[str, tuple[Window, ...]] = {}

    def declare(self, account: str, windows: Sequence[Window]) -> None:
        """Check ``account`` against ``windows`` instead of the server-wide ones (a provider
        emulation gives each plan its own per-minute limit)."""
        with self._lock:
            self._by_account[account] = tuple(windows)

    def record(self, entry: LedgerEntry) -> None:
        """Append one entry (called by the server)."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LedgerEntry]:
        """A snapshot of every entry, in arrival order."""
        with self._lock:
            return list(self._entries)

    def filter(
        self,
        *,
        status: int | None = None,
        path: str | None = None,
        fingerprint: str | None = None,
        account: str | None = None,
        outcome: str | None = None,
        scope_required: str | None = None,
        method: str | None = None,
    ) -> list[LedgerEntry]:
        """Entries matching every given criterion (``None`` means "any").

        ``path`` may be the full path (``/v2/price``) or the route (``/price``, ``/orders/{id}``).
        """
        wanted = {
            "status": status,
            "fingerprint": fingerprint,
            "account": account,
            "outcome": outcome,
            "scope_required": scope_required,
            "method": method,
        }
        return [
            e
            for e in self.entries()
            if all(v is None or getattr(e, k) == v for k, v in wanted.items())
            and (path is None or path in (e.path, e.route))
        ]

    def count(
        self,
        *,
        status: int | None = None,
        path: str | None = None,
        fingerprint: str | None = None,
        account: str | None = None,
        outcome: str | None = None,
        scope_required: str | None = None,
        method: str | None = None,
    ) -> int:
        """How many entries match (same criteria as :meth:`filter`).

        >>> Ledger().count(status=429, path="/price")
        0
        """
        return len(
            self.filter(
                status=status,
                path=path,
                fingerprint=fingerprint,
                account=account,
                outcome=outcome,
                scope_required=scope_required,
                method=method,
            )
        )

    def credits(self, *, fingerprint: str | None = None, account: str | None = None) -> int:
        """Credits billed in total, for one key or one account (``None`` means "any").

        >>> Ledger().credits()
        0
        """
        return sum(
            e.credits
            for e in self.entries()
            if (fingerprint is None or e.fingerprint == fingerprint)
            and (account is None or e.account == account)
        )

    def scopes_used_by(self, fingerprint: str) -> set[str]:
        """The scopes of every route a key called, e.g. to assert the trade key read nothing.

        >>> Ledger().scopes_used_by("fp:000000000000")
        set()
        """
        return {
            e.scope_required
            for e in self.entries()
            if e.fingerprint == fingerprint and e.scope_required is not None
        }

    def max_in_window(
        self, seconds: float, account: str | None = None, *, admitted_only: bool = True
    ) -> int:
        """The largest total cost in any half-open window ``(t - seconds, t]``.

        Computed from arrival times. ``account=None`` pools every account. With
        ``admitted_only=False`` refused requests count too (each for its route's cost).
        """
        chosen = [
            e
            for e in self.entries()
            if (account is None or e.account == account) and (e.admitted or not admitted_only)
        ]
        return _max_rolling(((e.time, e.cost) for e in chosen), seconds)

    def violations(self, windows: Sequence[Window] | None = None) -> list[Violation]:
        """Every window (the server's own, or ``windows``) that some account overfilled.

        Always empty for the server's own windows unless the sandbox has a bug; pass a
        client-side policy to check that a client stayed within it.
        """
        given = windows
        with self._lock:
            declared = dict(self._by_account)
        per_account: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for e in self.entries():
            if e.admitted and e.account is not None:
                per_account[e.account].append((e.time, e.cost))
        found: list[Violation] = []
        for account, points in sorted(per_account.items()):
            chosen = given if given is not None else declared.get(account, self._declared)
            for window in chosen:
                found.extend(_check(account, window, points))
        return found


def _max_rolling(points: Iterable[tuple[float, int]], seconds: float) -> int:
    ordered = sorted(points)
    best = total = left = 0
    for right, (t, cost) in enumerate(ordered):
        total += cost
        while ordered[left][0] <= t - seconds:
            total -= ordered[left][1]
            left += 1
        # Requests at the same instant all belong to the window ending at that instant.
        if right + 1 < len(ordered) and ordered[right + 1][0] == t:
            continue
        best = max(best, total)
    return best


def _check(account: str, window: Window, points: list[tuple[float, int]]) -> list[Violation]:
    if window.calendar:
        buckets: dict[tuple[float, float], int] = defaultdict(int)
        for t, cost in points:
            buckets[window.bucket(t)] += cost
        return [
            Violation(account, window, used, start)
            for (start, _end), used in sorted(buckets.items())
            if used > window.limit
        ]
    ordered = sorted(points)
    found: list[Violation] = []
    left = total = 0
    for t, cost in ordered:
        total += cost
        while ordered[left][0] <= t - window.seconds:
            total -= ordered[left][1]
            left += 1
        if total > window.limit and (not found or found[-1].at <= t - window.seconds):
            found.append(Violation(account, window, total, t))
    return found
