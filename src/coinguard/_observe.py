"""What one attempt did, as a value: :class:`Attempt`, and the :class:`Observer` seam.

The step generator (``_flow``) fills an :class:`Attempt` for every request it sends and hands
it to the client's observers (the audit log, the alert rules, tracing, metrics) once the
attempt is over, for both shells alike. An attempt holds no key: the key is named by its
fingerprint and where it came from, the route by its template (``/orders/{id}``), and every
text a server supplied (a request id) is redacted before it gets here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode

import httpx

from . import _redact

__all__ = [
    "SCHEMA_VERSION",
    "SENSITIVE_PARAMS",
    "Attempt",
    "Observer",
    "emit",
    "redacted_url",
    "route_template",
]

log = logging.getLogger("coinguard.observe")

#: The version of the audit record schema (the ``v`` field); bumped on any incompatible change.
SCHEMA_VERSION = 1

#: Query parameters whose values are never shown, whatever their value: keys and signatures
#: (compared without letter case, so Binance's ``signature`` is caught as well as ``Signature``).
SENSITIVE_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "access_key",
        "token",
        "access_token",
        "signature",
        "sig",
        "x_cg_demo_api_key",
        "x_cg_pro_api_key",
        "cmc_pro_api_key",
        "x-goog-signature",
        "awsaccesskeyid",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)

#: the fields of a record that are numbers or text when present (a record read back is checked)
_FIELD_KINDS: dict[str, tuple[type, ...]] = {
    "attempt": (int,),
    "status": (int,),
    "cost": (int,),
    "quota_wait": (int, float),
    "latency": (int, float),
    "key_fp": (str,),
    "key_source": (str,),
    "error": (str,),
    "request_id": (str,),
    "client_order_id": (str,),
    "symbol": (str,),
}

_ORDER_ID_FIELDS = (
    "newClientOrderId",
    "clientOrderId",
    "client_order_id",
    "cl_ord_id",
    "clOrdId",
    "userref",
)
_SYMBOL_FIELDS = ("symbol", "pair", "product_id", "instId", "market")


class Attempt(NamedTuple):
    """One request coinguard sent (or tried to send) for a call: an audit record.

    ``time`` is when the attempt started (UTC, ISO 8601); ``latency`` the seconds from the send
    to the answer (None when nothing was sent); ``quota_wait`` the seconds it waited for quota;
    ``attempt`` counts from 1 within the call ``call_id``. ``outcome`` is ``"ok"`` or the kind
    of failure (``"rate_limited"``, ``"auth"``, ``"timeout"``...), ``error`` the coinguard
    error's class name. Fields are in the order of :meth:`as_dict`, which is the JSON record.
    A named tuple, not a frozen dataclass: one is built per attempt, and it builds 5x faster.

    >>> Attempt.example().route
    '/price'
    """

    time: str
    provider: str
    method: str
    route: str
    scope: str
    key_fp: str | None
    key_source: str | None
    call_id: str
    attempt: int
    status: int | None
    outcome: str
    error: str | None
    cost: int | None
    quota_wait: float
    latency: float | None
    request_id: str | None
    client_order_id: str | None
    symbol: str | None
    host: str
    port: int | None
    started: float  # the client's clock reading when the attempt started
    v: int = SCHEMA_VERSION
    # the URL spans show, as text or a LazyURL (only tracing needs it: built when asked)
    url_parts: str | LazyURL = ""

    @property
    def url(self) -> str:
        """The full URL with every key and signature value replaced by ``REDACTED``."""
        return str(self.url_parts)

    def as_dict(self) -> dict[str, Any]:
        """The JSON record: the fields of the schema, in its order (not ``host``, ``port``,
        ``started``, the URL)."""
        return {"v": self.v, **{name: getattr(self, name) for name in RECORD_FIELDS}}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Attempt:
        """An attempt read back from an audit line (fields it lacks are empty).

        Raises ``ValueError`` for a field of the wrong type or a time outside the years
        1970 to 9998: a reader skips such a line rather than fail on it later.
        """
        known: dict[str, Any] = {f: record.get(f) for f in RECORD_FIELDS}
        for name, kinds in _FIELD_KINDS.items():
            value = known.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                raise ValueError(f"audit field {name!r} is a {type(value).__name__}")
        for name in ("provider", "method", "route", "scope", "call_id", "outcome", "time"):
            if not isinstance(known.get(name) or "", str):
                raise ValueError(f"audit field {name!r} is not text")
        started = datetime.fromisoformat(str(record["time"])).timestamp()
        if not 0 <= started < 253_370_764_800:  # 1970 to the end of 9998: every date prints
            raise ValueError("audit time out of range")
        known.update(
            host=str(record.get("host") or ""),
            port=record.get("port"),
            url_parts=str(record.get("url") or ""),
            started=started,
            v=int(record.get("v") or SCHEMA_VERSION),
            quota_wait=float(record.get("quota_wait") or 0.0),
            attempt=int(record.get("attempt") or 1),
        )
        return cls(**known)

    @classmethod
    def example(cls, **changes: Any) -> Attempt:
        """A successful read, for examples and tests; ``changes`` override its fields."""
        values: dict[str, Any] = {
            "time": "2026-11-27T12:00:00.000+00:00",
            "provider": "sandbox",
            "method": "GET",
            "route": "/price",
            "scope": "read",
            "key_fp": "fp:05234613d638",
            "key_source": "env var COINGUARD_READ_KEY",
            "call_id": "c0ffee00c0ffee00",
            "attempt": 1,
            "status": 200,
            "outcome": "ok",
            "error": None,
            "cost": 1,
            "quota_wait": 0.0,
            "latency": 0.012,
            "request_id": None,
            "client_order_id": None,
            "symbol": None,
            "host": "127.0.0.1",
            "port": 8765,
            "url_parts": "http://127.0.0.1:8765/v2/price",
            "started": 1795780800.0,
        }
        values.update(changes)
        if "started" in changes and "time" not in changes:
            values["time"] = iso_time(values["started"])
        return cls(**values)


class LazyURL:
    """A URL shown redacted (:func:`redacted_url`), built the first time it is shown; its
    repr and its pickle are the redacted text too, so the parts never leave it."""

    __slots__ = ("_parts", "_text")

    def __init__(self, url: httpx.URL, extra: Sequence[str] = (), added: Sequence[str] = ()):
        self._parts: tuple[httpx.URL, Sequence[str], Sequence[str]] | None = (url, extra, added)
        self._text = ""

    def __str__(self) -> str:
        if self._parts is not None:
            self._text, self._parts = redacted_url(*self._parts), None
        return self._text

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (str(self),))


#: The fields of an audit record after ``v``, in the order they are written.
RECORD_FIELDS = (
    "time",
    "provider",
    "method",
    "route",
    "scope",
    "key_fp",
    "key_source",
    "call_id",
    "attempt",
    "status",
    "outcome",
    "error",
    "cost",
    "quota_wait",
    "latency",
    "request_id",
    "client_order_id",
    "symbol",
)


@runtime_checkable
class Observer(Protocol):
    """Anything that wants to see every attempt: ``attempt(record)`` is called once per attempt.

    ``blocking`` says whether :meth:`attempt` may do I/O (an :class:`AsyncClient` then calls it
    in a worker thread). An observer that raises does not change the call's result: the error
    is logged on ``coinguard.observe``. That holds for a warning turned into an error by a
    warnings filter too: an order that was placed is never reported as failed.
    """

    blocking: bool

    def attempt(self, record: Attempt) -> None: ...


def emit(observers: Sequence[Observer], record: Attempt) -> None:
    """Give ``record`` to every observer; one that fails does not stop the others."""
    for observer in observers:
        try:
            observer.attempt(record)
        except Exception as exc:  # a Warning made an error by a filter included
            log.error(
                "observer %s failed on %s %s: %s: %s",
                type(observer).__name__,
                record.method,
                record.route,
                type(exc).__name__,
                _redact.redact(str(exc))[:200],
            )


def iso_time(seconds: float) -> str:
    """A clock reading as the audit log writes it (UTC, milliseconds)."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


_ID_SEGMENT = re.compile(
    r"""
    \d+                                   # 12345
    | [0-9a-fA-F]{8}-[0-9a-fA-F-]{27}     # a UUID
    | (?=[^/]*\d)[0-9a-fA-F]{12,}         # long hex with at least one digit
    | (?=[^/]*\d)[A-Za-z0-9_.:-]{20,}     # a long token with digits (an order id, a hash)
    """,
    re.VERBOSE,
)


def route_template(path: str, patterns: Iterable[str] = ()) -> str:
    """The route a path belongs to, without ids: a declared pattern it matches, else the path
    with id-like segments as ``{id}``; any key in it redacted.

    >>> route_template("/orders/12345/fills"), route_template("/orders/7", ["GET /orders/*"])
    ('/orders/{id}/fills', '/orders/*')
    """
    for pattern in patterns:
        if _matches(pattern, path):
            return _redact.redact(pattern.partition(" ")[2].strip() or pattern)
    segments = [
        "{id}" if segment and _ID_SEGMENT.fullmatch(segment) else segment
        for segment in path.split("/")
    ]
    return _redact.redact("/".join(segments))[:200]


def _matches(pattern: str, path: str) -> bool:
    raw = pattern.partition(" ")[2].strip() if " " in pattern.strip() else pattern.strip()
    if "*" not in raw:
        return False  # an exact route is its own template: the generic rule keeps it
    body = ".*".join(re.escape(part) for part in raw.split("*"))
    return re.fullmatch(body, path, re.DOTALL) is not None


def redacted_url(url: httpx.URL, extra: Iterable[str] = (), added: Iterable[str] = ()) -> str:
    """The URL as spans may show it: no user info, the value of every sensitive query
    parameter (:data:`SENSITIVE_PARAMS`, ``extra``) as ``REDACTED``, any key left redacted;
    ``added`` names parameters the auth flow adds (shown as ``REDACTED`` too).

    >>> redacted_url(httpx.URL("https://api.example.com/v3/x?ids=btc&x_cg_demo_api_key=CG-1"))
    'https://api.example.com/v3/x?ids=btc&x_cg_demo_api_key=REDACTED'
    """
    names = {n.lower() for n in extra} | SENSITIVE_PARAMS
    query = url.query.decode("ascii", "replace")
    if query:
        pairs = [
            (k, "REDACTED" if k.lower() in names else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        present = {k for k, _ in pairs}
        pairs += [(name, "REDACTED") for name in added if name not in present]
        query = urlencode(pairs, safe="/:,")
    elif added:
        query = urlencode([(name, "REDACTED") for name in added])
    clean = url.copy_with(userinfo=b"", query=None, fragment=None)
    text = str(clean) + (f"?{query}" if query else "")
    return _redact.redact(text)


def field_of(call_json: Any, params: Any, names: Sequence[str]) -> str | None:
    """The first of ``names`` found in a call's JSON body or params, redacted, as text."""
    for source in (call_json, params):
        if isinstance(source, Mapping):
            for name in names:
                value = source.get(name)
                if isinstance(value, str | int) and not isinstance(value, bool):
                    return _redact.redact(str(value))[:100]
    return None


def order_id_of(call_json: Any, params: Any, idempotency_key: str | None) -> str | None:
    """The client order id of a trade: the body's or the params', else its idempotency key."""
    return field_of(call_json, params, _ORDER_ID_FIELDS) or idempotency_key


def symbol_of(call_json: Any, params: Any) -> str | None:
    """The symbol a trade names, if any."""
    return field_of(call_json, params, _SYMBOL_FIELDS)
