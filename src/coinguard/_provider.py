"""Provider profiles: where an API lives, how its key is sent, which routes are reads or trades."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import ConfigurationError
from ._origin import canonical_path
from ._pairs import TradeCounter
from ._quota import DecayingCounter, QuotaPolicy
from ._redact import MIN_KEY_LENGTH
from ._signing import Signature, SigningInput

if TYPE_CHECKING:
    from ._endpoints import Endpoint

__all__ = [
    "AuthStyle",
    "BearerKey",
    "ClientOrderId",
    "ErrorCode",
    "ErrorKind",
    "ErrorWait",
    "HeaderKey",
    "Nonce",
    "OrderForm",
    "Plan",
    "Provider",
    "QueryKey",
    "RouteQuota",
    "Scope",
    "ServerTime",
    "SignedKey",
    "get_provider",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Scope(str, Enum):
    """Which key a request needs: ``READ`` for data, ``TRADE`` for anything that can move money."""

    READ = "read"
    TRADE = "trade"


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name or not _HEADER_NAME.match(name):
        raise ConfigurationError(f"{kind} name {name!r} is not a valid HTTP token")
    return name


@dataclass(frozen=True)
class HeaderKey:
    """Send the key in a request header, e.g. ``HeaderKey("x-api-key")``."""

    name: str

    def __post_init__(self) -> None:
        _check_name("header", self.name)


@dataclass(frozen=True)
class QueryKey:
    """Send the key as a query parameter, e.g. ``QueryKey("api_key")``; prefer headers."""

    name: str

    def __post_init__(self) -> None:
        _check_name("query parameter", self.name)


@dataclass(frozen=True)
class BearerKey:
    """Send the key as ``Authorization: Bearer <key>``."""

    header: str = "Authorization"
    prefix: str = "Bearer"


@dataclass(frozen=True)
class SignedKey:
    """Send the API key in ``header`` and sign requests with a second secret.

    ``sign`` turns one attempt (:class:`coinguard.SigningInput`: method, path, query, body and
    the time to sign with, in ms) and the secret into a :class:`coinguard.Signature`; it runs
    inside the auth flow on every attempt, so a retry is signed afresh, never replayed.
    Requests on ``signed_routes`` (``"METHOD /path"`` patterns, ``*`` for any) are signed;
    others carry only the key. ``secret_params`` and ``secret_headers`` name what the signer
    adds that must never be shown: they are stripped from every request coinguard keeps and
    masked in every text.

    >>> from coinguard import BinanceSigner
    >>> SignedKey("X-MBX-APIKEY", BinanceSigner(), signed_routes=["GET /api/v3/account"]).header
    'X-MBX-APIKEY'
    """

    header: str
    sign: Callable[[SigningInput, str], Signature]
    signed_routes: Iterable[str] = ("* /*",)
    secret_params: tuple[str, ...] = ("signature",)
    secret_headers: tuple[str, ...] = ()
    _signed: tuple[_Route, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("header", self.header)
        if not callable(self.sign):
            raise ConfigurationError(f"SignedKey.sign must be callable, got {self.sign!r}")
        routes = self.signed_routes
        if isinstance(routes, str) or not isinstance(routes, Iterable):
            raise ConfigurationError(
                f"SignedKey.signed_routes must be a list of 'METHOD /path' strings, got {routes!r}"
            )
        object.__setattr__(self, "signed_routes", tuple(routes))
        object.__setattr__(self, "_signed", _routes(self.signed_routes, "SignedKey.signed_routes"))
        for name in self.secret_params:
            _check_name("secret query parameter", name)
        for name in self.secret_headers:
            _check_name("secret header", name)

    def signs(self, method: str, path: str) -> bool:
        """True when a request to ``path`` (relative to the base URL) must be signed."""
        method = method.upper()
        return any(r.covers(method, canonical_path(path)) for r in self._signed)


@dataclass(frozen=True)
class ServerTime:
    """Where a signed provider tells its time, so signatures carry the server's clock.

    The offset is measured on the first signed request, again every ``every`` seconds, and at
    once when an answer carries one of ``resync_codes`` (then the call is sent once more).

    >>> ServerTime("/api/v3/time", "serverTime", resync_codes=frozenset({"-1021"})).every
    300.0
    """

    path: str
    field: str
    resync_codes: frozenset[str] = frozenset()
    every: float = 300.0


@dataclass(frozen=True)
class Nonce:
    """A signed provider whose requests carry a nonce that must grow with every request of
    a key (Kraken): coinguard draws it from the quota store, one atomic increment shared by
    every process and machine using the store, at least the current time in ms, and hands it
    to the signer (``SigningInput.nonce``) on every attempt, so a retry has a new one.

    Concurrent requests can still reach the server out of order; an answer with one of
    ``resend_codes`` says the request was refused for its nonce, not executed, so it is signed
    again with a fresh nonce and sent once more, up to ``resends`` times.

    >>> Nonce(resend_codes=frozenset({"EAPI:Invalid nonce"})).resends
    8
    """

    resend_codes: frozenset[str] = frozenset()
    resends: int = 8

    def __post_init__(self) -> None:
        value = self.resends
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError("Nonce.resends must be an int >= 0")


AuthStyle = HeaderKey | QueryKey | BearerKey | SignedKey


@dataclass(frozen=True)
class OrderForm:
    """How a provider takes a plain order (the agent tools' ``place_order``): its route,
    whether the fields go as a JSON body or as parameters, and how they are spelt.

    ``pair`` sends the symbol as the provider's own (``Provider.symbols``: ``BTC`` as
    ``BTCUSDT``); ``upper`` sends side and type upper-case (``BUY``, ``LIMIT``); ``text``
    sends quantity and price as decimal text; ``limit_extra`` adds fields to a limit order
    (``{"timeInForce": "GTC"}``); ``unwrap`` names the answer's field that holds the order.

    >>> OrderForm("POST /api/v3/order", where="params", upper=True).route
    'POST /api/v3/order'
    """

    route: str = "POST /orders"
    where: Literal["json", "params"] = "json"
    pair: bool = False
    upper: bool = False
    text: bool = False
    limit_extra: Mapping[str, str] = field(default_factory=dict)
    unwrap: str | None = "data"

    def __post_init__(self) -> None:
        _Route.parse(self.route, "OrderForm.route")
        if self.where not in ("json", "params"):
            raise ConfigurationError("OrderForm.where must be 'json' or 'params'")
        object.__setattr__(self, "limit_extra", MappingProxyType(dict(self.limit_extra)))


def _token_id() -> str:
    return "cg" + uuid.uuid4().hex[:30]


@dataclass(frozen=True)
class ClientOrderId:
    """Orders the provider de-duplicates by a client order id sent as a parameter (not an
    ``Idempotency-Key`` header), and the routes to look an order up by that id.

    coinguard puts a fresh id (``new_id()``) in ``param`` of every order on ``routes``
    (unless the caller set one, which must match ``pattern``; ``shape`` says it in words for
    the error) and keeps it across attempts.
    When an order's outcome is unknown it asks each ``lookup`` route in turn (one route, or
    a sequence: Kraken's OpenOrders, then ClosedOrders), with ``lookup_param`` set to the id
    and the order's ``copy_params``. A route says "not found" with one of
    ``not_found_codes``, or, when ``found`` is given, by an answer in which
    ``found(answer, client_id)`` finds no order with that id (it returns None; otherwise
    what it returns is the call's answer).
    Every route saying "not found" is one poll; there are up to ``polls``, ``poll_interval``
    seconds apart. The order found is the call's result. When every poll says "not found",
    the outcome stays unknown (:class:`OrderOutcomeUnknownError`): "not found" for a while
    is no proof, and an exchange that accepts an id again once its order is no longer open
    (Binance, Kraken) would execute a re-send twice. Only for an exchange that refuses a used
    id for good, ``max_sends`` above 1 lets coinguard send it again with the same id; a
    ``duplicate_codes`` answer to that re-send means it was there after all, and it is
    looked up again. A client refuses an id it already used, and an order that also carries
    one of ``excludes`` (a field the provider refuses beside the id).

    ``where="json"`` puts the id in the order's JSON body instead of its parameters
    (Coinbase's ``client_order_id``). ``lookup=None`` says the provider has no lookup by
    client order id and documents a re-send with the same id as its duplicate guard (it
    answers with the order placed first): after an unknown outcome the order is re-sent at
    once, up to ``max_sends`` sends in all.

    >>> ClientOrderId(routes=["POST /api/v3/order"], lookup="GET /api/v3/order").param
    'newClientOrderId'
    """

    routes: Iterable[str]
    lookup: str | Iterable[str] | None
    param: str = "newClientOrderId"
    lookup_param: str = "origClientOrderId"
    copy_params: tuple[str, ...] = ("symbol",)
    not_found_codes: frozenset[str] = frozenset()
    duplicate_codes: frozenset[str] = frozenset()
    polls: int = 4
    poll_interval: float = 0.25
    max_sends: int = 1
    where: Literal["params", "json"] = "params"
    found: Callable[[Any, str], Any] | None = None
    new_id: Callable[[], str] = _token_id
    pattern: str = r"[a-zA-Z0-9_-]{1,36}"
    shape: str = ""
    excludes: tuple[str, ...] = ()
    _routes: tuple[_Route, ...] = field(init=False, repr=False, compare=False)
    _lookups: tuple[_Route, ...] = field(init=False, repr=False, compare=False)
    _valid: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        routes = self.routes
        if isinstance(routes, str) or not isinstance(routes, Iterable):
            raise ConfigurationError("ClientOrderId.routes must be a list of 'METHOD /path'")
        object.__setattr__(self, "routes", tuple(routes))
        object.__setattr__(self, "_routes", _routes(self.routes, "ClientOrderId.routes"))
        lookup = self.lookup
        if lookup is None:
            lookups: tuple[str, ...] = ()
        else:
            given = (lookup,) if isinstance(lookup, str) else lookup
            if not isinstance(given, Iterable) or not (lookups := tuple(given)):
                raise ConfigurationError(
                    "ClientOrderId.lookup must be a 'METHOD /path' route, a non-empty list of"
                    " them, or None"
                )
        object.__setattr__(self, "_lookups", _routes(lookups, "ClientOrderId.lookup"))
        if self.where not in ("params", "json"):
            raise ConfigurationError("ClientOrderId.where must be 'params' or 'json'")
        for name in ("polls", "max_sends"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"ClientOrderId.{name} must be an int >= 1")
        for name in ("found", "new_id"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigurationError(f"ClientOrderId.{name} must be callable")
        try:
            valid = re.compile(f"(?:{self.pattern})\\Z")
        except (re.error, TypeError) as exc:
            # the message says it all; a foreign exception is never chained to ours
            raise ConfigurationError(
                f"ClientOrderId.pattern is not a regular expression: {exc}"
            ) from None
        object.__setattr__(self, "_valid", valid)

    def applies(self, method: str, path: str) -> bool:
        """True for an order on one of ``routes``."""
        return any(r.covers(method.upper(), canonical_path(path)) for r in self._routes)

    @property
    def lookup_route(self) -> tuple[str, str] | None:
        """``(method, path)`` of the first lookup; None when the provider has none."""
        routes = self.lookup_routes
        return routes[0] if routes else None

    @property
    def lookup_routes(self) -> tuple[tuple[str, str], ...]:
        """``(method, path)`` of each lookup, in the order they are asked."""
        return tuple((r.method, r.pattern.partition(" ")[2].strip()) for r in self._lookups)

    def valid(self, value: object) -> bool:
        """True when ``value`` matches ``pattern``, the shape the exchange accepts."""
        return isinstance(value, str) and self._valid.match(value) is not None


@dataclass(frozen=True)
class _Route:
    method: str
    regex: re.Pattern[str]
    loose: re.Pattern[str]
    pattern: str

    @classmethod
    def parse(cls, pattern: str, where: str) -> _Route:
        if not isinstance(pattern, str):
            raise ConfigurationError(f"{where}: route {pattern!r} must be a 'METHOD /path' string")
        method, sep, path = pattern.strip().partition(" ")
        if not sep or not path.startswith("/") or not method:
            raise ConfigurationError(
                f"{where}: route {pattern!r} must look like 'METHOD /path' (e.g. 'GET /orders*')"
            )
        path = path.strip()
        body = ".*".join(re.escape(part) for part in path.split("*"))
        loose = ".*".join(re.escape(part) for part in canonical_path(path).split("*"))
        if path.endswith("/*"):  # canonical paths have no trailing slash: "/orders/" too
            loose = loose.removesuffix("/.*") + "(?:/.*)?"
        # DOTALL and \Z: a decoded path may hold a line break, which servers route like any
        # character ("/orders/7%0A/fills"), and "$" would also match before a final newline
        return cls(
            method.upper(),
            re.compile(f"{body}\\Z", re.DOTALL),
            re.compile(f"{loose}\\Z", re.IGNORECASE | re.DOTALL),
            pattern,
        )

    def matches(self, method: str, path: str) -> bool:
        """Exactly as written: for routes that lower the scope (a read, an idempotent trade)."""
        return self.method in (method, "*") and self.regex.match(path) is not None

    def exempts(self, method: str, path: str) -> bool:
        """For exemptions (a read, an idempotent trade): exactly as written, and only on a path
        a server cannot route as another (already canonical, no trailing slash)."""
        return canonical_path(path) == path and self.matches(method, path)

    def covers(self, method: str, canonical: str) -> bool:
        """As the most permissive server routes: for routes that raise the scope to trade.

        HEAD and OPTIONS reach the GET handler in Flask, Starlette and Django; letter case is
        ignored (Express, ASP.NET); ``canonical`` comes from :func:`canonical_path`.
        """
        methods = (method, "GET") if method in ("HEAD", "OPTIONS") else (method,)
        return (self.method == "*" or self.method in methods) and bool(self.loose.match(canonical))


def _routes(patterns: Iterable[str], where: str) -> tuple[_Route, ...]:
    return tuple(_Route.parse(p, where) for p in patterns)


@dataclass(frozen=True)
class RouteQuota:
    """A limiter of the provider's own for some routes, beside its main ``quota``.

    ``routes`` (``"METHOD /path"`` patterns, ``*`` for any) say which calls it counts, at the
    cost its ``quota`` gives each route. ``per`` says whom the provider counts: ``"ip"`` every
    key of this address, ``"key"`` the key's account (Binance's UID). With ``each=True`` every
    route has a limiter of its own (Binance's ``/sapi/*``: one endpoint's use leaves another's
    untouched), else the routes share one (Binance's RAW_REQUESTS). ``headers`` are the
    response headers (names or prefixes, any case) that report its use; only they sync it.
    ``separate=True`` says the provider limits these routes by this limiter alone: their
    answers (headers, a 429 and its ``Retry-After``) are this limiter's and never the main
    quota's, which still counts them at its own cost for them (0 for Binance's SAPI).

    >>> from coinguard import QuotaPolicy, Window
    >>> sapi = RouteQuota("sapi ip", ["GET /sapi/*"], QuotaPolicy([Window.per_minute(12_000)]),
    ...                   each=True, separate=True, headers=("x-sapi-used-ip-weight-",))
    >>> sapi.route_of("GET", "/sapi/v1/system/status")
    'GET /sapi/*'
    """

    name: str
    routes: Iterable[str]
    quota: QuotaPolicy
    per: Literal["ip", "key"] = "ip"
    each: bool = False
    headers: tuple[str, ...] = ()
    separate: bool = False
    _routes: tuple[_Route, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError(f"RouteQuota name must be a non-empty string: {self.name!r}")
        routes = self.routes
        if isinstance(routes, str) or not isinstance(routes, Iterable):
            raise ConfigurationError(f"RouteQuota {self.name!r}: routes must be a list of routes")
        object.__setattr__(self, "routes", tuple(routes))
        object.__setattr__(self, "_routes", _routes(self.routes, f"RouteQuota {self.name!r}"))
        if not isinstance(self.quota, QuotaPolicy):
            raise ConfigurationError(f"RouteQuota {self.name!r}: quota must be a QuotaPolicy")
        if self.per not in ("ip", "key"):
            raise ConfigurationError(f"RouteQuota {self.name!r}: per must be 'ip' or 'key'")
        if isinstance(self.headers, str) or not all(isinstance(h, str) for h in self.headers):
            raise ConfigurationError(f"RouteQuota {self.name!r}: headers must be a tuple of names")
        object.__setattr__(self, "headers", tuple(h.lower() for h in self.headers))

    def route_of(self, method: str, path: str) -> str | None:
        """The declared route a call to ``method path`` counts under, or None."""
        canonical = canonical_path(path.split("?", 1)[0])
        for route in self._routes:
            if route.covers(method.upper(), canonical):
                return route.pattern
        return None

    def reported(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers of an answer that speak for this limiter: its own, and Retry-After
        when the answer is its own (``separate``)."""
        names = self.headers
        keep = ("retry-after", "retry-after-ms") if self.separate else ()
        return {
            k: v for k, v in headers.items() if k.lower().startswith(names) or k.lower() in keep
        }


@dataclass(frozen=True)
class Plan:
    """One plan of a provider: its quota, and the host and key placement where the plan
    changes them (CoinGecko's demo and paid plans live on different hosts, with different
    headers). ``source`` says where the numbers come from, or that they are a default.

    >>> Plan(QuotaPolicy([Window.per_month(10_000)]), source="provider docs").quota.windows[0].limit
    10000
    """

    quota: QuotaPolicy | None
    base_url: str | None = None
    auth: AuthStyle | None = None
    read_key_env: str | None = None
    key_check: Any = None
    source: str = ""


#: What a provider's error code means: the coinguard error it becomes.
#: ``unknown`` is "execution status unknown" (an order then raises OrderOutcomeUnknownError).
ErrorKind = Literal[
    "auth", "permission", "payment", "rate_limit", "wrong_host", "invalid", "not_found", "unknown"
]
#: How long such an error lasts: retried with backoff, or not before the next minute, UTC day or
#: UTC month (the caller gets ``retry_after`` and no retry when that is past the deadline).
ErrorWait = Literal["backoff", "minute", "day", "month", "never"]


@dataclass(frozen=True)
class ErrorCode:
    """What one of the provider's own error codes means, e.g. CoinMarketCap's 1009.

    ``until`` is a regular expression whose first group finds, in the provider's message, the
    epoch milliseconds the limit lasts until (Binance: ``"IP banned until (\\d+)"``); used
    when the answer has no ``Retry-After``. ``hold`` is how many seconds a rate limit lasts
    when the answer names no time at all (Kraken's temporary lockout): the key is held that
    long in the penalty box, for every process sharing the quota store.

    >>> ErrorCode("rate_limit", "day", "the daily credit limit is spent").wait
    'day'
    """

    kind: ErrorKind
    wait: ErrorWait = "never"
    hint: str = ""
    until: str | None = None
    hold: float | None = None


@dataclass(frozen=True)
class Provider:
    """A provider profile: base URL, key placement, route scopes and provider quirks.

    ``not_executed_statuses`` are answers the provider documents as "the request was not
    executed" (e.g. 429 when throttled orders are never placed): only those let a trade without
    an idempotency key be re-sent; by default none do. ``min_key_length`` (default 16) refuses
    keys too short to be told apart from ordinary text in logs.

    ``throttles_with_401`` is for a provider that has answered throttling with 401
    Unauthorized (Coinbase): a 401 whose rate-limit headers say nothing remains
    (``x-ratelimit-remaining: 0``) or that names a ``Retry-After`` is then a
    :class:`coinguard.RateLimitError`, backed off like a 429, and neither reloads the key
    nor judges it invalid. A 401 without those signs stays an authentication error.

    ``quota_per="ip"`` says the provider counts its limits per IP address, not per key: the
    read and trade keys then share one quota. ``order_quota`` is a second quota that only
    orders count (Binance's ORDERS windows), per account. ``counter`` is a decaying counter
    per API key (Kraken's REST limit, :class:`coinguard.DecayingCounter`), kept in the quota
    store beside the windows; ``nonce`` makes the store hand out the key's nonces (:class:`Nonce`).
    ``route_quotas`` are limiters of the provider's own for some routes (:class:`RouteQuota`:
    Binance's per-endpoint SAPI limits, its RAW_REQUESTS), each counted beside ``quota``.
    ``trade_counter`` is a decaying counter per trading pair that orders and cancels fill
    (Kraken's trading limit, :class:`coinguard.TradeCounter`).

    ``plans`` names the provider's plans (:class:`Plan`); ``plan`` is the one this profile is
    set to (:meth:`with_plan`). ``error_code_at`` lists where in an error body the provider puts
    its own error code (``("status", "error_code")``), ``error_codes`` what each code means
    (:class:`ErrorCode`); a code outside ``success_codes`` is an error even on HTTP 200. An
    answer with one of ``reload_codes`` says the key itself was refused, as a 401 does: the
    key and its signing secret are reloaded once (a pair rotated at its source) and the call
    goes again.

    ``endpoints`` declares the typed read endpoints (:class:`coinguard.Endpoint`) that
    ``client.endpoints``, ``client.call()`` and ``client.paginate()`` use; ``symbols`` maps a
    ticker to the provider's own id for the unified ``prices()``/``ohlcv()`` (empty: tickers are
    sent as they are).

    >>> p = Provider(name="example", base_url="https://api.example.com/v2",
    ...              auth=HeaderKey("x-api-key"), trade_routes=["GET /orders*"])
    >>> p.scope_of("GET", "/orders/7")
    <Scope.TRADE: 'trade'>
    """

    name: str
    base_url: str | None
    auth: AuthStyle = field(default_factory=lambda: HeaderKey("x-api-key"))
    read_routes: Iterable[str] = ()
    trade_routes: Iterable[str] = ()
    read_key_env: str | None = None
    trade_key_env: str | None = None
    read_secret_env: str | None = None
    trade_secret_env: str | None = None
    server_time: ServerTime | None = None
    nonce: Nonce | None = None
    counter: DecayingCounter | None = None
    trade_counter: TradeCounter | None = None
    client_order_id: ClientOrderId | None = None
    order_form: OrderForm | None = None
    quota_per: Literal["key", "ip"] = "key"
    order_quota: QuotaPolicy | None = None
    route_quotas: tuple[RouteQuota, ...] = ()
    envelope: bool = False
    request_id_headers: tuple[str, ...] = ("x-request-id",)
    idempotency_header: str | None = None
    idempotent_routes: Iterable[str] = ()
    retryable_statuses: frozenset[int] = frozenset()
    not_executed_statuses: frozenset[int] = frozenset()
    throttles_with_401: bool = False
    min_key_length: int = MIN_KEY_LENGTH
    quota: QuotaPolicy | None = None
    key_check: Any = None
    plans: Mapping[str, Plan] = field(default_factory=dict)
    plan: str | None = None
    error_code_at: tuple[tuple[str, ...], ...] = ()
    error_codes: Mapping[str, ErrorCode] = field(default_factory=dict)
    success_codes: frozenset[str] = frozenset({"0"})
    reload_codes: frozenset[str] = frozenset()
    endpoints: tuple[Endpoint, ...] = ()
    symbols: Mapping[str, str] = field(default_factory=dict)
    unplanned: Provider | None = field(default=None, repr=False, compare=False)
    _read: tuple[_Route, ...] = field(init=False, repr=False, compare=False)
    _trade: tuple[_Route, ...] = field(init=False, repr=False, compare=False)
    _idempotent: tuple[_Route, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError(f"Provider name must be a non-empty string, got {self.name!r}")
        if self.idempotency_header is not None:
            _check_name("idempotency header", self.idempotency_header)
        for attr in ("retryable_statuses", "not_executed_statuses"):
            object.__setattr__(self, attr, self._statuses(attr))
        length = self.min_key_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ConfigurationError(
                f"provider {self.name!r}: min_key_length must be a positive int, got {length!r}"
            )
        if not isinstance(self.auth, HeaderKey | QueryKey | BearerKey | SignedKey):
            raise ConfigurationError(
                f"provider {self.name!r}: auth must be HeaderKey, QueryKey, BearerKey or SignedKey"
            )
        for attr in ("read_routes", "trade_routes", "idempotent_routes"):
            value = getattr(self, attr)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ConfigurationError(
                    f"{self.name}.{attr} must be a list of 'METHOD /path' strings, got {value!r}"
                )
            object.__setattr__(self, attr, tuple(value))
        object.__setattr__(self, "_read", _routes(self.read_routes, f"{self.name}.read_routes"))
        object.__setattr__(self, "_trade", _routes(self.trade_routes, f"{self.name}.trade_routes"))
        object.__setattr__(
            self, "_idempotent", _routes(self.idempotent_routes, f"{self.name}.idempotent_routes")
        )
        object.__setattr__(self, "plans", MappingProxyType(dict(self.plans)))
        route_quotas = self.route_quotas
        if isinstance(route_quotas, RouteQuota) or not all(
            isinstance(q, RouteQuota) for q in route_quotas
        ):
            raise ConfigurationError(f"{self.name}.route_quotas must be a tuple of RouteQuota")
        object.__setattr__(self, "route_quotas", tuple(route_quotas))
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "symbols", MappingProxyType(dict(self.symbols)))
        codes = {str(code): meaning for code, meaning in self.error_codes.items()}
        object.__setattr__(self, "error_codes", MappingProxyType(codes))
        if self.plan is not None and self.plan not in self.plans:
            raise ConfigurationError(self._unknown_plan(self.plan))

    def endpoint(self, name: str) -> Endpoint:
        """The typed endpoint called ``name`` (see :attr:`endpoints`).

        >>> from coinguard import get_provider
        >>> get_provider("coingecko").endpoint("simple_price").route
        '/simple/price'
        """
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        known = ", ".join(ep.name for ep in self.endpoints) or "none"
        raise ConfigurationError(
            f"provider {self.name!r} declares no endpoint {name!r}; its endpoints: {known}"
        )

    def _statuses(self, attr: str) -> frozenset[int]:
        value = getattr(self, attr)
        codes = tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else ()
        if (not codes and value) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
        ):
            raise ConfigurationError(
                f"provider {self.name!r}: {attr} must be a set of HTTP status codes, got {value!r}"
            )
        return frozenset(codes)

    def with_plan(self, plan: str) -> Provider:
        """This profile set to ``plan``: its quota, and its host and key placement if it has
        its own.

        >>> from coinguard import get_provider
        >>> get_provider("coingecko").with_plan("basic").base_url
        'https://pro-api.coingecko.com/api/v3'
        """
        if not isinstance(plan, str) or plan.lower() not in self.plans:
            raise ConfigurationError(self._unknown_plan(plan))
        # What a plan leaves unsaid comes from the profile as declared, never from the plan it
        # was set to before (a demo plan after a Pro one must not keep the Pro host); a field
        # the caller changed on this profile (a proxy's host, its header) stays theirs.
        base = self.unplanned or self
        before = base._plan_fields(self.plan if self.plan in base.plans else None)
        after = base._plan_fields(plan.lower())
        fields = {
            name: getattr(self, name) if getattr(self, name) != before[name] else value
            for name, value in after.items()
        }
        return dataclasses.replace(self, plan=plan.lower(), unplanned=base, **fields)

    def _plan_fields(self, plan: str | None) -> dict[str, Any]:
        """The fields a plan sets on this (unplanned) profile."""
        chosen = self.plans[plan] if plan is not None else Plan(self.quota)
        return {
            "quota": chosen.quota,
            "base_url": chosen.base_url or self.base_url,
            "auth": chosen.auth or self.auth,
            "read_key_env": chosen.read_key_env or self.read_key_env,
            "key_check": chosen.key_check or self.key_check,
        }

    def _unknown_plan(self, plan: object) -> str:
        if not self.plans:
            return f"provider {self.name!r} has no named plans; pass quota=QuotaPolicy(...)"
        known = ", ".join(sorted(self.plans))
        return f"provider {self.name!r} has no plan {plan!r}; its plans: {known}"

    def error_code(self, body: Any) -> str | None:
        """The provider's own error code in a decoded body, as text; None if there is none.

        A list (Kraken's ``"error": ["EAPI:Invalid key"]``) gives its first entry; an empty
        one says there is no error.
        """
        for path in self.error_code_at:
            value: Any = body
            for key in path:
                value = value.get(key) if isinstance(value, Mapping) else None
            if isinstance(value, list):
                value = value[0] if value else None
            if value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # 1009.0 is 1009
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                return str(value).strip()
            return "?"  # a code is there but cannot be read: not a success either
        return None

    def meaning(self, code: str) -> ErrorCode | None:
        """What the provider's error ``code`` means: its own entry in ``error_codes``, else the
        longest entry it begins with up to a colon (``"EOrder:"`` covers every EOrder error,
        ``"EService:Throttled"`` covers ``"EService: Throttled: 1700000000"``).

        >>> from coinguard import get_provider
        >>> get_provider("kraken").meaning("EService: Throttled: 1700000000").kind
        'rate_limit'
        """
        found = self.error_codes.get(code)
        if found is not None:
            return found
        tight = _tight(code)
        best: tuple[int, ErrorCode] | None = None
        for declared, meaning in self.error_codes.items():
            name = _tight(declared)
            rest = tight[len(name) :]
            if not tight.startswith(name) or not (name.endswith(":") or rest.startswith(":")):
                continue
            if best is None or len(name) > best[0]:
                best = (len(name), meaning)
        return best[1] if best is not None else None

    def scope_of(self, method: str, path: str) -> Scope:
        """Classify a request as the most permissive mainstream server would route it.

        Unsafe methods are trades unless listed in ``read_routes`` (matched exactly as written,
        on a path already in canonical form); safe methods are reads unless a ``trade_routes``
        pattern covers them in any spelling a server treats as the same route (letter case,
        doubled or trailing slashes, ``;`` parameters, HEAD/OPTIONS for GET). When in doubt,
        the stricter scope wins. ``path`` is relative to the base URL, e.g. ``/price``.

        >>> p = Provider(name="x", base_url=None, trade_routes=["GET /orders*"])
        >>> p.scope_of("HEAD", "//ORDERS/7"), p.scope_of("GET", "/price")
        (<Scope.TRADE: 'trade'>, <Scope.READ: 'read'>)
        """
        method = method.upper()
        canonical = canonical_path(path)
        if method in _SAFE_METHODS:
            trade = any(r.covers(method, canonical) for r in self._trade)
            return Scope.TRADE if trade else Scope.READ
        read = any(r.exempts(method, path) for r in self._read)
        return Scope.READ if read else Scope.TRADE

    def is_idempotent(self, method: str, path: str) -> bool:
        """True when the provider declares that re-sending this trade route repeats nothing."""
        return any(r.exempts(method.upper(), path) for r in self._idempotent)


def _tight(code: str) -> str:
    """An error code without the spaces some providers put after a colon."""
    return re.sub(r":\s+", ":", code.strip())


def get_provider(name: str) -> Provider:
    """Return a built-in provider profile by name, set to its default plan.

    The profiles live in :mod:`coinguard.providers`, one module per provider.

    >>> get_provider("coinmarketcap").base_url
    'https://pro-api.coinmarketcap.com'
    """
    from .providers import lookup  # the profiles import this module

    return lookup(name)
