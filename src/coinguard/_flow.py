"""What one call does, step by step, for both shells: :class:`Base` and its step generator.

``Base._flow`` decides everything an attempt does (the key, the quota, the send, redirect
hops, the answer) and yields each piece of I/O as a step (:class:`Send`, :class:`Sleep`,
:class:`Run`); :class:`coinguard.Client` and :class:`coinguard.AsyncClient` only perform the
steps, with blocking calls and awaits respectively.
"""

from __future__ import annotations

import contextlib
import functools
import html
import logging
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, NoReturn

import httpx
from pydantic import SecretStr

from . import _redact
from ._auth import NONCE_EXTENSION
from ._checks import check_quota_args
from ._core import Call, ClientCore
from ._endpoints import Endpoint, Endpoints, Response
from ._exceptions import (
    APIStatusError,
    CoinguardError,
    ConfigurationError,
    OrderOutcomeUnknownError,
    RateLimitError,
    ResponseDecodeError,
)
from ._headers import ServerWindow
from ._journal import AuditArg, Note, next_call_id, observers_for, outcome_of
from ._keyed import counter_fill, draw_nonce, shared_store, take_counter
from ._keys import (
    EnvSource,
    FileSource,
    KeyInput,
    KeySlot,
    KeySource,
    Unusable,
    ValueSource,
    as_secret,
)
from ._observe import (
    Attempt,
    LazyURL,
    Observer,
    emit,
    iso_time,
    order_id_of,
    route_template,
    symbol_of,
)
from ._outcome import safe_url, throttled_401
from ._paging import OnError, PageRequest, Resume, Rows, as_day, walk
from ._pairs import PlacedOrders, charge, param
from ._progress import Progress
from ._provider import Nonce, Provider, QueryKey, RouteQuota, Scope
from ._quota import Quota, QuotaPolicy, QuotaStatus, QuotaStore, Reservation, open_store
from ._retry import (
    CallState,
    RetryDetails,
    RetryPolicy,
    is_retryable,
    make_retrying_kwargs,
)
from ._secret import Secret
from ._secrets import SecretRef
from ._settings import Settings
from ._steps import Departure, Run, Send, Sleep
from ._unified import Adapter, Fetch, SymbolMap, adapter_for
from ._verify import KeyReport

_log = logging.getLogger("coinguard.observe")

__all__ = ["MAX_AGE", "MISSING", "Base", "Run", "Send", "Sleep", "Step", "wrap_keys"]

log = logging.getLogger("coinguard.client")

MISSING: Any = object()
MAX_AGE = timedelta(days=90)
#: Quota waits longer than this many seconds are logged at INFO and shown on progress bars.
VISIBLE_WAIT = 1.0
_quota_log = logging.getLogger("coinguard.quota")


# Steps are tuples: one or more is built per request, and tuples are the cheapest to build.


def wrap_keys(
    read_key: KeyInput | None, trade_key: KeyInput | None, kind: str = "key"
) -> tuple[KeyInput | None, KeyInput | None]:
    """Key values given as text, as :class:`Secret`; sources and callables as they are; any
    other value replaced by a stand-in that names only its type (the error comes later)."""
    return tuple(  # type: ignore[return-value]
        as_secret(key, f"the {scope}_{kind} argument")
        if isinstance(key, str | SecretStr)
        else key
        if key is None or isinstance(key, Secret | KeySource) or callable(key)
        else Unusable(key)
        for scope, key in (("read", read_key), ("trade", trade_key))
    )


Step = Send | Sleep | Run


class Base:
    """Construction and the per-attempt bookkeeping shared by both shells."""

    _core: ClientCore
    _http: httpx.Client | httpx.AsyncClient
    _owns_http: bool

    def __init__(
        self,
        *,
        provider: Provider | str,
        read_key: KeyInput | None,
        trade_key: KeyInput | None,
        read_secret: KeyInput | None,
        trade_secret: KeyInput | None,
        allow_trading: bool,
        base_url: str | None,
        plan: str | None,
        timeout: float | httpx.Timeout | None,
        settings: Settings | None,
        env_file: str | Path | None,
        retry: RetryPolicy | None,
        max_retries: int | None,
        follow_redirects: bool,
        max_redirects: int,
        quota: QuotaPolicy | Any | None,
        quota_store: str | QuotaStore | None,
        on_quota: Literal["wait", "raise"],
        max_wait: float,
        quota_account: str | None,
        on_retry: Callable[[RetryDetails], None] | None,
        clock: Callable[[], float],
        jitter: Callable[[], float],
        audit: AuditArg = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self._core = ClientCore(
            provider=provider,
            read_key=read_key,
            trade_key=trade_key,
            read_secret=read_secret,
            trade_secret=trade_secret,
            allow_trading=allow_trading,
            base_url=base_url,
            plan=plan,
            timeout=timeout,
            settings=settings,
            env_file=env_file,
            retry=retry,
            max_retries=max_retries,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
        )
        check_quota_args(on_quota=on_quota, max_wait=max_wait, quota_store=quota_store)
        self._clock = clock
        self._jitter = jitter
        self._on_retry = on_retry
        policy = self._core.provider.quota if quota is MISSING else quota
        store = quota_store or self._core.quota_store or "memory"
        # A store named by URL opens now, once for every key of the client: its errors (a bad
        # URL, a missing extra) surface here, and no first request pays for `import redis`.
        self._own_store: QuotaStore | None = None
        nonces = self._core.provider.nonce is not None  # drawn from the store, quota or not
        if (policy is not None or nonces) and isinstance(store, str) and store != "memory":
            store = self._own_store = open_store(store)
        self._quota_args = (policy, store, on_quota, max_wait)
        if quota_account is not None and (not isinstance(quota_account, str) or not quota_account):
            raise ConfigurationError("quota_account must be a non-empty string (an account id)")
        self._quota_account = quota_account
        self._quotas: dict[str, Quota] = {}  # by key slot
        self._placed = PlacedOrders()  # to price a cancel by its order's age (_pairs)
        # the provider's clock minus ours (ms), and when it was measured (None: never)
        self._time_offset: tuple[float, float | None] = (0.0, None)
        self._quota_lock = threading.Lock()
        self._wait_listeners: list[Callable[[str], None]] = []
        self._observers, self._own_audit = observers_for(
            audit, observers, self._core.audit_log, self
        )
        self._observers_block = any(getattr(o, "blocking", True) for o in self._observers)
        self._routes: dict[str, str] = {}
        # (method, path) -> its route limiters: (limiter, quota name, scope, path of its cost)
        self._route_limiters: dict[tuple[str, str], list[tuple[RouteQuota, str, str, str]]] = {}
        self._texts: dict[str, str] = {}
        core = self._core
        patterns = (*core.provider.trade_routes, *core.provider.idempotent_routes)
        patterns += (*core.provider.read_routes,)
        if core.provider.quota is not None:
            patterns += tuple(p for p, _ in core.provider.quota.costs)
        self._route_patterns = tuple(str(p) for p in patterns)
        auth = core.provider.auth
        self._query_key = (auth.name,) if isinstance(auth, QueryKey) else ()

    @property
    def provider(self) -> Provider:
        """The provider profile this client talks to."""
        return self._core.provider

    @property
    def endpoints(self) -> Endpoints:
        """The provider's typed endpoints, by name: route, scope, cost, parameters, model.

        >>> print(client.endpoints["daily_ohlcv"].route)  # doctest: +SKIP
        /daily-ohlcv
        """
        provider = self._core.provider
        return Endpoints(provider.name, provider.endpoints)

    @property
    def symbol_map(self) -> SymbolMap:
        """The symbol -> provider id table the unified :meth:`prices`/:meth:`ohlcv` use.

        >>> client.symbol_map["BTC"]  # doctest: +SKIP
        'bitcoin'
        """
        return self._adapter().symbol_map

    def _adapter(self) -> Adapter:
        provider = self._core.provider
        return adapter_for(provider.name, provider.symbols)

    def _unified_ohlcv(
        self,
        symbols: str | Sequence[str],
        interval: str,
        start: Any,
        end: Any,
        mapping: Mapping[str, str] | None,
    ) -> list[Fetch]:
        first = as_day(start, "start")
        if first is None:
            raise ConfigurationError("ohlcv() needs start= (a date, a datetime or 'YYYY-MM-DD')")
        today = datetime.fromtimestamp(self._clock(), tz=timezone.utc).date()
        last = as_day(end, "end")
        return self._adapter().ohlcv_fetches(symbols, interval, first, last, mapping, today)

    def _typed(self, name: str, params: Mapping[str, Any]) -> tuple[Endpoint, str, dict[str, Any]]:
        endpoint = self.endpoints[name]
        path, query = endpoint.request(params)
        return endpoint, path, query

    @property
    def allow_trading(self) -> bool:
        """Whether this client may send trade requests at all."""
        return self._core.allow_trading

    def _quota_for(self, slot: KeySlot, secret: Secret) -> Quota | None:
        """The quota of a key slot: one per slot, kept when its key rotates; one for both
        slots when the provider counts per IP address."""
        per_ip = self._core.provider.quota_per == "ip"
        name = "ip" if per_ip else slot.scope_name
        quota = self._quotas.get(name)
        policy = self._quota_args[0]
        if quota is not None or policy is None:
            return quota
        return self._new_quota(name, policy, lambda: self._quota_key(slot, secret))

    def _order_quota_for(self, slot: KeySlot, secret: Secret) -> Quota | None:
        """The quota only orders count (``Provider.order_quota``), per account."""
        policy = self._core.provider.order_quota
        quota = self._quotas.get("orders")
        if quota is not None or policy is None or self._quota_args[0] is None:
            return quota
        return self._new_quota(
            "orders", policy, lambda: self._quota_key(slot, secret, ip=False) + ":orders"
        )

    def _route_quotas_for(
        self, method: str, path: str, slot: KeySlot, secret: Secret
    ) -> list[tuple[RouteQuota, Quota, str]]:
        """The provider's own limiters of the call's route (``Provider.route_quotas``), each
        with the path its cost is read for: the declared route when each route has its own."""
        matched = self._route_limiters.get((method, path))
        if matched is None:
            matched = []
            for limiter in self._core.provider.route_quotas:
                route = limiter.route_of(method, path)
                if route is not None:
                    scope = route if limiter.each else "*"
                    cost_path = route.partition(" ")[2] if limiter.each else path
                    matched.append((limiter, f"route:{limiter.name}:{scope}", scope, cost_path))
            if len(self._route_limiters) >= 1024:  # paths with ids in them: not forever
                self._route_limiters.clear()
            self._route_limiters[method, path] = matched
        found = []
        for limiter, name, scope, cost_path in matched:
            quota = self._quotas.get(name)
            if quota is None:
                quota = self._new_quota(
                    name,
                    limiter.quota,
                    functools.partial(self._route_quota_key, limiter, scope, slot, secret),
                )
            found.append((limiter, quota, cost_path))
        return found

    def _route_quota_key(
        self, limiter: RouteQuota, scope: str, slot: KeySlot, secret: Secret
    ) -> str:
        """Whom a route's own limiter counts: the address, or the key's account (its UID)."""
        if limiter.per == "ip" and self._quota_account is None:
            who = f"{self._core.provider.name}:ip"
        else:
            who = self._quota_key(slot, secret, ip=False)
        return f"{who}:{limiter.name}" + (f":{scope}" if limiter.each else "")

    def _new_quota(self, name: str, policy: Any, key: Callable[[], str]) -> Quota:
        _, store, on_quota, max_wait = self._quota_args
        with self._quota_lock:
            quota = self._quotas.get(name)
            if quota is None:
                quota = Quota(
                    policy,
                    store=store,
                    key_id=key(),
                    on_quota=on_quota,
                    max_wait=max_wait,
                    clock=self._clock,
                )
                self._quotas[name] = quota
        return quota

    def _quota_key(self, slot: KeySlot, secret: Secret, *, ip: bool = True) -> str:
        """Who the provider counts: the account if the user named it, else the key slot.

        A slot whose source is a place (a variable, a file, a secret reference) is named by
        it, so a rotated key keeps counting in every process and after a restart; a key given
        as a value or a callable is named by the first key it held.
        """
        provider = self._core.provider.name
        if self._quota_account is not None:
            return f"{provider}:account:{self._quota_account}"
        if ip and self._core.provider.quota_per == "ip":  # every key from this address
            return f"{provider}:ip"
        source = slot.source
        if isinstance(source, EnvSource | FileSource | SecretRef) or (
            isinstance(source, ValueSource) and source.description.startswith("settings ")
        ):
            return f"{provider}:{slot.scope_name}:{source.description}"
        return f"{provider}:{secret.fingerprint}"

    @property
    def quota(self) -> QuotaStatus | None:
        """Quota use per window for the read key (used, remaining, limit, resets_at), or None.

        After a ``/price`` (cost 1) and a ``/daily-ohlcv`` (cost 2) call on the sandbox:

        >>> print(client.quota)  # doctest: +SKIP
        quota sandbox:fp:05234613d638
        window    used  remaining  limit  resets at (UTC)
        50/s         3         47     50  2026-11-27 23:28:40
        1000/min     3        997   1000  2026-11-27 23:29:39
        """
        secret = self._core.read.loaded
        quota = self._quota_for(self._core.read, secret) if secret is not None else None
        return quota.status() if quota is not None else None

    def route_quotas(self, method: str, path: str) -> tuple[QuotaStatus, ...]:
        """The status of the provider's own limiters a call to ``method path`` counts in
        besides :attr:`quota` (``Provider.route_quotas``: Binance's per-endpoint SAPI limits,
        its RAW_REQUESTS); empty before the call's key is loaded or with the quota off.

        >>> print(client.route_quotas("GET", "/sapi/v1/system/status")[0])  # doctest: +SKIP
        quota binance:ip:SAPI IP:GET /sapi/v1/system/status
        window               used  remaining  limit  resets at (UTC)
        SAPI IP 12000/min       1      11999  12000  2026-11-29 16:31:00
        """
        core = self._core
        trade = core.provider.scope_of(method, path) is Scope.TRADE
        slot = core.trade if trade and core.trade is not None else core.read
        secret = slot.loaded
        if secret is None or self._quota_args[0] is None:
            return ()
        found = self._route_quotas_for(method.upper(), path, slot, secret)
        return tuple(q.status() for _, q, _ in found)

    def _learning(self, slot: KeySlot, report: KeyReport) -> Callable[[], None] | None:
        """What the key check taught the slot's quota (the provider's usage route is the
        authority on what was spent), as a step to run; None when it taught nothing."""
        secret = slot.loaded
        quota = self._quota_for(slot, secret) if secret is not None else None
        windows = [
            ServerWindow(
                limit=u.limit,
                remaining=None if u.limit is None else max(0, u.limit - u.used),
                used=u.used,
                seconds=u.seconds,
                name=u.window,
            )
            for u in report.permissions.usage
            if u.used is not None and u.seconds is not None
        ]
        if quota is None or not windows:
            return None
        return functools.partial(quota.learn, windows)

    def _tell_findings(self, reports: Sequence[KeyReport]) -> None:
        """Hand ``verify_key()``'s reports to the observers that count findings (Metrics)."""
        for observer in self._observers:
            tell = getattr(observer, "key_findings", None)
            if callable(tell):
                try:
                    tell(self._core.provider.name, reports)
                except Exception as exc:
                    _log.error(
                        "observer %s failed on key findings: %s",
                        type(observer).__name__,
                        type(exc).__name__,
                    )

    def _hand_over(self, exc: CoinguardError, call: Call, state: CallState) -> list[CoinguardError]:
        """After a failed first attempt: re-raise if final, else seed the tenacity loop with it.

        The first attempt runs outside tenacity because almost every call succeeds at once and
        building the retry machinery costs more than the rest of coinguard's per-call work.
        """
        if isinstance(exc, OrderOutcomeUnknownError):
            state.unknown = exc
        if not is_retryable(exc, self._core.retry, idempotent=call.idempotent, state=state):
            raise exc
        return [exc]

    def _retrying_kwargs(self, call: Call, slot: KeySlot, state: CallState) -> dict[str, Any]:
        return make_retrying_kwargs(
            self._core.retry,
            idempotent=call.idempotent,
            state=state,
            clock=self._clock,
            rng=self._jitter,
            method=call.method,
            path=call.path,
            fingerprint=lambda: slot.loaded.fingerprint if slot.loaded else None,
            on_retry=self._on_retry,
            resend_note=self._core.resend_note(call),
        )

    def _flow(self, call: Call, slot: KeySlot, state: CallState) -> Generator[Step, Any, Any]:
        """One attempt as a sequence of steps; the shells perform each step's I/O.

        Key, quota, send, redirects, header sync, reload arming and the outcome are decided
        here, once, for both :class:`Client` and :class:`AsyncClient`. A signed call first
        makes sure the provider's clock offset is known and fresh; refused for its timestamp
        (a code in ``ServerTime.resync_codes``), it measures the clock again and goes once more,
        signed afresh: the provider did not execute a request it refused so. With observers,
        each attempt's record is handed to them as its last step.
        """
        nonce = self._core.provider.nonce
        if nonce is not None and self._core.signs(call):
            return (yield from self._nonce_flow(call, slot, state, nonce))
        timing = self._core.provider.server_time
        if timing is None or not self._core.signs(call):
            return (yield from self._attempt_flow(call, slot, state))
        yield from self._sync_time(state, force=False)
        try:
            return (yield from self._attempt_flow(call, slot, state))
        except APIStatusError as exc:
            code = self._core.provider.error_code(exc.body) if exc.body is not None else None
            if state.resynced or code not in timing.resync_codes:
                raise
        state.resynced = True
        log.info(
            "%s: refused for its timestamp; measuring the server's clock again", call.describe()
        )
        yield from self._sync_time(state, force=True)
        return (yield from self._attempt_flow(call, slot, state))

    def _nonce_flow(
        self, call: Call, slot: KeySlot, state: CallState, nonce: Nonce
    ) -> Generator[Step, Any, Any]:
        """An attempt of a nonce-signed call: refused for its nonce (a request of the same key,
        signed later, reached the server first), it was not executed, so it goes again with a
        fresh nonce, at most ``Nonce.resends`` times."""
        for resend in range(nonce.resends + 1):
            try:
                return (yield from self._attempt_flow(call, slot, state))
            except APIStatusError as exc:
                code = self._core.provider.error_code(exc.body) if exc.body is not None else None
                if code not in nonce.resend_codes or resend == nonce.resends:
                    raise
            log.info("%s: refused for its nonce; signing it again", call.describe())
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _draw_nonce(self, secret: Secret) -> Generator[Step, Any, int]:
        """The next nonce of this key, from the quota store every client of the key shares;
        never below a millisecond clock, so a fresh store does not start below the nonces the
        key was used with before it."""
        store = shared_store(self._quota_args[1], self._core.provider.name, "nonces")
        key_id = f"{self._core.provider.name}:nonce:{secret.fingerprint}"
        return (yield from draw_nonce(store, key_id, int(self._clock() * 1000)))

    def _count(self, call: Call, secret: Secret, state: CallState) -> Generator[Step, Any, None]:
        """Take the call's cost on the provider's decaying counter of this key, waiting for
        room (bounded by the call's deadline, or not at all with ``on_quota="raise"``)."""
        counter = self._core.provider.counter
        assert counter is not None
        cost = counter.cost(call.method, call.path)
        if cost == 0:
            return
        _, store, on_quota, max_wait = self._quota_args
        store = shared_store(store, self._core.provider.name, "call counter")
        now = self._clock()
        left = max(0.0, state.started + self._core.retry.deadline - now)
        wait = 0.0 if on_quota == "raise" else min(max_wait, left)
        key_id = f"{self._core.provider.name}:counter:{secret.fingerprint}"
        yield from take_counter(store, key_id, counter, cost, now, wait)

    def _counters_full(self, exc: RateLimitError, secret: Secret, pair: str | None) -> Run | None:
        """The provider refused a call for a counter: count it full for every client (the
        pair's trading counter when its code says so, else the key's call counter)."""
        provider = self._core.provider
        trading = provider.trade_counter
        if provider.counter is None and (trading is None or pair is None):
            return None
        store = shared_store(self._quota_args[1], provider.name, "call counter")
        body = getattr(exc, "body", None)
        code = provider.error_code(body) if body is not None else None
        if trading is not None and pair is not None and code in trading.full_codes:
            key_id = self._pair_id(secret, pair)
            return counter_fill(store, key_id, trading.counter, self._clock())
        if provider.counter is None:
            return None
        key_id = f"{provider.name}:counter:{secret.fingerprint}"
        return counter_fill(store, key_id, provider.counter, self._clock())

    def _pair_id(self, secret: Secret, pair: str) -> str:
        # the pair is part of the identity: every pair has its own counter
        return f"{self._core.provider.name}:pair:{secret.fingerprint}:{pair}"

    def _count_pair(
        self, call: Call, secret: Secret, state: CallState
    ) -> Generator[Step, Any, str | None]:
        """Take an order's or a cancel's cost on its pair's trading counter (``_pairs``);
        the pair counted, or None."""
        trading = self._core.provider.trade_counter
        if trading is None:
            return None
        now = self._clock()
        charged = charge(trading, self._placed, call.method, call.path, call.params, now)
        if charged is None:
            return None
        pair, cost = charged
        _, store, on_quota, max_wait = self._quota_args
        store = shared_store(store, self._core.provider.name, "trading counter")
        left = max(0.0, state.started + self._core.retry.deadline - now)
        wait = 0.0 if on_quota == "raise" else min(max_wait, left)
        yield from take_counter(
            store, self._pair_id(secret, pair), trading.counter, cost, now, wait
        )
        return pair

    def note_placed(self, call: Call, answer: Any) -> None:
        """Remember an order this client placed (its answer arrived, or a lookup found it)
        under its client id and the ids in the answer: a cancel of it is priced by its age."""
        trading = self._core.provider.trade_counter
        if trading is None or trading.kind(call.method, call.path) != "add":
            return
        pair = param(call.params, trading.pair_param)
        if pair is None:
            return
        ids = [call.client_order_id] if call.client_order_id else []
        if trading.placed_ids is not None:
            # an answer of another shape names no id: a cancel by txid is priced as unknown
            with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
                ids += [str(i) for i in trading.placed_ids(answer)]
        self._placed.add(ids, pair, self._clock())

    def _server_ms(self) -> int:
        """Now on the provider's clock, in ms: what a signature's timestamp says."""
        return int(self._clock() * 1000 + self._time_offset[0])

    def _sync_time(self, state: CallState, *, force: bool) -> Generator[Step, Any, None]:
        """Measure the provider's clock (``ServerTime``) when never measured, stale or forced:
        the offset is its time minus the midpoint of our send and its answer."""
        timing = self._core.provider.server_time
        assert timing is not None
        offset, measured = self._time_offset
        if not force and measured is not None and self._clock() - measured < timing.every:
            return
        call = self._core.prepare("GET", timing.path)
        before = self._clock()
        body = yield from self._attempt_flow(call, self._core.read, state)
        after = self._clock()
        value = body.get(timing.field) if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ResponseDecodeError(
                f"{call.describe()}: no {timing.field!r} number in the server-time answer",
                status_code=200,
                content_type="application/json",
                method=call.method,
                url=safe_url(call.url),
            )
        offset = float(value) - (before + after) * 500.0
        self._time_offset = (offset, after)
        log.debug("server clock offset %+.0f ms", offset)

    def _attempt_flow(
        self, call: Call, slot: KeySlot, state: CallState
    ) -> Generator[Step, Any, Any]:
        """The steps of one attempt of ``call`` (see :meth:`_flow`), observed if the client
        has observers."""
        if self._observers:
            return self._observed(call, slot, state)
        return self._steps(call, slot, state, None)

    def _observed(self, call: Call, slot: KeySlot, state: CallState) -> Generator[Step, Any, Any]:
        note = Note(self._clock())
        state.attempts += 1
        if not state.call_id:
            state.call_id = next_call_id()
        try:
            value = yield from self._steps(call, slot, state, note)
        except GeneratorExit:  # a closing generator cannot yield
            raise
        except BaseException as exc:
            record = self._record(call, slot, state, note, exc)
            yield Run(emit, (self._observers, record), self._observers_block)
            raise
        record = self._record(call, slot, state, note, None)
        yield Run(emit, (self._observers, record), self._observers_block)
        return value

    def _record(
        self,
        call: Call,
        slot: KeySlot,
        state: CallState,
        note: Note,
        exc: BaseException | None,
    ) -> Attempt:
        """The audit record of one attempt; holds no key (see ``_observe``)."""
        response = note.response
        status = getattr(exc, "status_code", None) if exc is not None else None
        if status is None and response is not None:
            status = response.status_code
        latency = None
        if note.sent is not None:
            latency = max(0.0, (note.answered or self._clock()) - note.sent)
        secret = note.secret
        route = self._routes.get(call.path)
        if route is None:
            route = route_template(call.path, self._route_patterns)
            if len(self._routes) >= 1024:  # paths with ids in them must not grow this forever
                self._routes.clear()
            self._routes[call.path] = route
        trade = call.scope is Scope.TRADE
        url = note.url or call.url
        return Attempt(
            time=iso_time(note.started),
            provider=self._core.provider.name,
            method=call.method,
            route=route,
            scope=call.scope.value,
            key_fp=secret.fingerprint if secret is not None else None,
            key_source=self._shown(slot.source.description)[:200],
            call_id=state.call_id,
            attempt=state.attempts,
            status=status if isinstance(status, int) else None,
            outcome=outcome_of(exc),
            error=type(exc).__name__ if exc is not None else None,
            cost=note.cost,
            quota_wait=round(note.wait, 6),
            latency=None if latency is None else round(latency, 6),
            request_id=self._core._request_id(response) if response is not None else None,
            client_order_id=order_id_of(call.json, call.params, call.idempotency_key)
            if trade
            else None,
            symbol=symbol_of(call.json, call.params) if trade else None,
            host=self._shown(url.host),
            port=url.port or (443 if url.scheme == "https" else 80),
            url_parts=LazyURL(url, self._query_key, self._query_key if secret else ()),
            started=note.started,
        )

    def _shown(self, text: str) -> str:
        """``text`` redacted, remembered: a key source or a host is the same on every call."""
        shown = self._texts.get(text)
        if shown is None:
            if len(self._texts) >= 64:
                self._texts.clear()
            shown = self._texts[text] = _redact.redact(text)
        return shown

    def _steps(
        self, call: Call, slot: KeySlot, state: CallState, note: Note | None
    ) -> Generator[Step, Any, Any]:
        """The steps of one attempt; ``note`` (with observers) records what they did."""
        # built first: a request that cannot be built must not cost a key fetch or quota
        request = self._core.build(self._http, call, own_client=self._owns_http)
        signing_slot = self._core.secrets.get(slot.scope_name)
        signing = None
        if state.reload_pending:
            secret = yield Run(slot.reload, (state.key_generation,), blocking=True)
            state.key_generation = slot.generation
            if signing_slot is not None:  # a key rotated at its source comes with its secret
                generation = state.secret_generation
                signing = yield Run(signing_slot.reload, (generation,), blocking=True)
                state.secret_generation = signing_slot.generation
        else:
            seen = slot.generation  # read first: a concurrent reload must not be taken for ours
            secret = slot.peek()
            if secret is None:
                secret = yield Run(slot.get, (), blocking=True)
            state.key_generation = seen or slot.generation
        if signing_slot is not None and signing is None:
            seen = signing_slot.generation
            signing = signing_slot.peek()
            if signing is None:
                signing = yield Run(signing_slot.get, (), blocking=True)
            state.secret_generation = seen or signing_slot.generation
        quota = self._quota_for(slot, secret)
        if note is not None:
            note.secret = secret
            before = self._clock()
        reservation = (yield from self._take(quota, call, state)) if quota is not None else None
        orders = self._order_quota_for(slot, secret) if call.is_order else None
        placed = None
        limiters = (
            self._route_quotas_for(call.method, call.path, slot, secret)
            if quota is not None
            else []
        )
        if orders is not None or limiters:
            placed, taken = yield from self._take_more(
                quota, reservation, orders, limiters, call, state
            )
        else:
            taken = []
        if self._core.provider.counter is not None:
            yield from self._count(call, secret, state)
        pair = (yield from self._count_pair(call, secret, state)) if call.is_order else None
        if self._core.provider.nonce is not None and self._core.signs(call):
            request.extensions[NONCE_EXTENSION] = yield from self._draw_nonce(secret)
        if note is not None:
            note.wait += self._clock() - before
            note.cost = reservation.cost if reservation is not None else None
            note.sent, note.url = self._clock(), request.url
        auth: httpx.Auth | None = self._core.auth(secret, signing, self._server_ms)
        hops = 0
        pending = reservation  # the provider's call whose answer the quota has not had yet
        deadline = state.started + self._core.retry.deadline
        while True:
            depart = None
            if quota is not None and pending is not None:
                depart = Departure(quota, pending, deadline, self._clock)
            try:
                response = yield Send(request, auth, depart, call)
            except CoinguardError:
                if depart is not None and depart.refused:  # held back: not a byte was sent
                    raise
                # it may have reached the server: count it as late as its failure
                yield from self._answered(quota, pending if depart is None else depart.reservation)
                raise
            if depart is not None:
                if pending is reservation:
                    reservation = depart.reservation
                pending = depart.reservation
            if note is not None:
                note.response, note.answered = response, self._clock()
            if quota is not None and pending is not None:  # inline: every request runs it
                answered = self._clock()
                if depart is not None and depart.left is not None:
                    if depart.heard is not None:  # the stamp came before the headers did
                        answered = depart.heard
                    quota.took(depart.left, answered)
                if quota.late(pending, answered):
                    yield Run(
                        quota.answered, (pending,), blocking=quota.blocking, kwargs={"at": answered}
                    )
                pending = None  # a hop to another origin is not the provider's call
            hop = self._core.next_hop(call, response, hops)
            if hop is None:
                break
            request, keyed = hop
            hops += 1
            if not self._owns_http:
                self._core.drop_jar_cookies(request, call)
            if keyed and quota is not None:  # another request to the provider: quota
                hop_started = self._clock()
                reservation = pending = yield from self._take(quota, call, state)
                if note is not None:
                    note.wait += self._clock() - hop_started
                    note.cost = (note.cost or 0) + reservation.cost
            elif not keyed:
                auth = None
        # a throttling answer sent as 401 (Coinbase) says nothing against the key
        refused = response.status_code == 401 and not throttled_401(self._core.provider, response)
        self._arm_reload(slot, state, refused)
        # only the provider's own answers feed its quota; a route the provider limits apart
        # (Binance's SAPI) answers for its own limiter alone
        ours = self._core.from_provider(response)
        observer = quota if quota is not None and ours else None
        if any(limiter.separate for limiter, _, _ in taken):
            observer = None
        taken = taken if ours else []
        try:
            value = self._core.outcome(call, response, now=self._clock())
        except CoinguardError as exc:
            if (
                isinstance(exc, APIStatusError)
                and exc.body is not None
                and not state.reload_pending
            ):
                code = self._core.provider.error_code(exc.body)
                if code is not None and code in self._core.provider.reload_codes:
                    self._arm_reload(slot, state, True)
            if isinstance(exc, RateLimitError):
                full = self._counters_full(exc, secret, pair)
                if full is not None:
                    yield full
            if observer is not None:  # a 429 still puts the key in the penalty box
                # a limit named by the body ("daily credits spent") holds as long as it says
                hold = (
                    getattr(exc, "retry_after", None) if isinstance(exc, RateLimitError) else None
                )
                billed = observer.policy.billed(call.method, call.path, ok=False)
                yield self._observe(observer, response, reservation, None, hold, billed)
            limited = exc.retry_after if isinstance(exc, RateLimitError) else None
            for limiter, route_quota, taken_at in taken:
                if limiter.separate or limiter.headers:
                    hold = limited if limiter.separate else None
                    yield self._observe_route(limiter, route_quota, response, taken_at, hold)
            raise
        if pair is not None:
            self.note_placed(call, value)
        if observer is not None:
            # the decoded body too: CoinMarketCap says there what a call really cost
            billed = observer.policy.billed(call.method, call.path, ok=True)
            yield self._observe(observer, response, reservation, value, None, billed)
            if orders is not None:  # Binance's X-MBX-ORDER-COUNT-10S/-1D
                yield self._observe(orders, response, placed, None)
        for limiter, route_quota, taken_at in taken:
            if limiter.separate or limiter.headers:
                yield self._observe_route(limiter, route_quota, response, taken_at, None)
        return Response.of(response, value) if call.raw else value

    @staticmethod
    def _observe_route(
        limiter: RouteQuota,
        quota: Quota,
        response: httpx.Response,
        reservation: Reservation,
        penalty: float | None,
    ) -> Run:
        """What an answer says to a route's own limiter: only the headers that report it,
        and its status only when the answer is its own (``RouteQuota.separate``)."""
        status = response.status_code if limiter.separate else 200
        return Run(
            quota.observe,
            (status, limiter.reported(response.headers)),
            blocking=quota.blocking,
            kwargs={"reservation": reservation, "penalty": penalty},
        )

    def _take_more(
        self,
        quota: Quota | None,
        reservation: Reservation | None,
        orders: Quota | None,
        limiters: list[tuple[RouteQuota, Quota, str]],
        call: Call,
        state: CallState,
    ) -> Generator[Step, Any, tuple[Reservation | None, list[Any]]]:
        """Take the call's room in the order quota and in its routes' own limiters, after
        the main quota's; with no room in one, everything already taken goes back."""
        held: list[tuple[Quota, Reservation]] = []
        if quota is not None and reservation is not None:
            held.append((quota, reservation))
        placed = None
        taken: list[tuple[RouteQuota, Quota, Reservation]] = []
        try:
            if orders is not None:
                placed = yield from self._take(orders, call, state)
                held.append((orders, placed))
            for limiter, route_quota, path in limiters:
                got = yield from self._take(route_quota, call, state, path)
                held.append((route_quota, got))
                taken.append((limiter, route_quota, got))
        except CoinguardError:  # no room: what the call took elsewhere goes back
            for giver, given in held:
                if giver.blocking:
                    yield Run(giver.release, (given,), True)
                else:
                    giver.release(given)
            raise
        return placed, taken

    @staticmethod
    def _observe(
        quota: Quota,
        response: httpx.Response,
        reservation: Reservation | None,
        body: Any,
        penalty: float | None = None,
        billed: int | None = None,
    ) -> Run:
        return Run(
            quota.observe,
            (response.status_code, response.headers),
            blocking=quota.blocking,
            kwargs={
                "body": body,
                "reservation": reservation,
                "penalty": penalty,
                "billed": billed,
            },
        )

    def _take(
        self, quota: Quota, call: Call, state: CallState, path: str | None = None
    ) -> Generator[Step, Any, Reservation]:
        """Reserve quota for one request and wait until it may go.

        The call's deadline bounds the wait: one that cannot fit raises
        :class:`QuotaExceededError` at once. A wait interrupted before the call leaves (a
        cancelled task, ``KeyboardInterrupt``) gives its reservation back. Store I/O is always
        a blocking step, for the shells to keep off an event loop; steps that do no I/O (the
        memory store) are called here: a round trip through the shell costs more than the call.
        """
        blocking = quota.blocking
        deadline = state.started + self._core.retry.deadline
        left = max(0.0, deadline - self._clock())
        path = call.path if path is None else path
        if blocking:
            reservation: Reservation = yield Run(
                quota.reserve, (call.method, path), True, {"max_wait": left}
            )
        else:
            reservation = quota.reserve(call.method, path, max_wait=left)
        held: Reservation | None = reservation  # what an interruption must give back
        try:
            while True:
                if reservation.wait > VISIBLE_WAIT:
                    self._announce_wait(quota, reservation.wait)
                if reservation.wait > 0:
                    yield Sleep(reservation.wait)
                # re-checked as it leaves: calls ahead of it may have been recounted meanwhile
                now = self._clock()
                left = max(0.0, deadline - now)
                held = None  # sent() hands back a reservation, or has given this one up
                if blocking and not quota.settles_locally(reservation, now):
                    reservation = yield Run(
                        quota.sent, (reservation,), True, {"at": now, "max_wait": left}
                    )
                else:
                    reservation = quota.sent(reservation, at=now, max_wait=left)
                if reservation.wait <= 0:
                    return reservation
                held = reservation
        except BaseException as exc:
            if held is not None:
                if not blocking:
                    quota.release(held)
                elif not isinstance(exc, GeneratorExit):  # a closing generator cannot yield
                    yield Run(quota.release, (held,), True)
            raise

    @contextlib.contextmanager
    def _progress(
        self, progress: bool | None, desc: str, total: int | None = None
    ) -> Iterator[Progress]:
        """A progress bar that also shows this client's quota waits while it is open."""
        with Progress(progress, desc, total) as bar:
            self._wait_listeners.append(bar.waiting)
            try:
                yield bar
            finally:
                self._wait_listeners.remove(bar.waiting)

    def _announce_wait(self, quota: Quota, seconds: float) -> None:
        """Say that a call waits for the quota: an INFO line, and any progress bar."""
        window = ""
        if not quota.blocking:  # naming the full window costs store I/O elsewhere
            full = [w for w in quota.status().windows if w.remaining <= 0]
            window = f" for the {full[-1].name} window" if full else ""
        text = f"waiting {seconds:.1f} s{window}"
        _quota_log.info("%s: %s", self._core.provider.name, text)
        for listener in list(self._wait_listeners):
            listener(text)

    def _paging(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        *,
        start: Any,
        end: Any,
        span: timedelta | None,
        limit: int | None,
        on_error: OnError,
        resume: Resume | None,
    ) -> tuple[Endpoint, Generator[PageRequest, Any, Rows]]:
        """The endpoint and the sans-I/O walk of a ``paginate`` call (resumed if asked)."""
        ep = self.endpoints[endpoint]
        if resume is not None:
            if not isinstance(resume, Resume) or resume.endpoint != ep.name:
                raise ConfigurationError(f"resume= must be the Resume of a {ep.name!r} walk")
            walker = walk(
                ep, resume.params, start=resume.start, end=resume.end, span=resume.span,
                limit=resume.limit, on_error=on_error, resume=resume,
            )  # fmt: skip
            return ep, walker
        first, last = as_day(start, "start"), as_day(end, "end")
        walker = walk(ep, params, start=first, end=last, span=span, limit=limit, on_error=on_error)
        return ep, walker

    def _answered(
        self, quota: Quota | None, reservation: Reservation | None
    ) -> Generator[Step, Any, None]:
        """Tell the quota when a call was answered; only a late answer costs store I/O."""
        now = self._clock()
        if quota is not None and reservation is not None and quota.late(reservation, now):
            yield Run(quota.answered, (reservation,), blocking=quota.blocking, kwargs={"at": now})

    def _close_quotas(self) -> None:
        with self._quota_lock:
            quotas, self._quotas = list(self._quotas.values()), {}
            store, self._own_store = self._own_store, None
        for quota in quotas:
            quota.close()
        if store is not None:
            store.close()
        own = getattr(self, "_own_audit", None)
        if own is not None:
            own.close()

    def _arm_reload(self, slot: KeySlot, state: CallState, refused: bool) -> None:
        """Arm a one-time reload of the key pair when a reloadable key was ``refused`` (a 401,
        or one of the provider's ``reload_codes``)."""
        signing = self._core.secrets.get(slot.scope_name)
        reloadable = slot.source.reloadable or (signing is not None and signing.source.reloadable)
        state.reload_pending = refused and not state.reloaded_key and reloadable
        state.reloaded_key = state.reloaded_key or state.reload_pending

    def _summary(self) -> list[tuple[str, str]]:
        """What a notebook shows of the client: provider, keys by fingerprint, trading."""
        core = self._core
        plan = f" ({core.provider.plan})" if core.provider.plan else ""
        rows = [("provider", core.provider.name + plan), ("base URL", str(core.base_url))]
        for slot in (core.read, core.trade):
            if slot is None:
                continue
            loaded = slot.loaded
            state = loaded.fingerprint if loaded is not None else "not loaded yet"
            rows.append((f"{slot.scope_name} key", f"{state}, from {slot.source.description}"))
        rows.append(("trading", "on" if core.allow_trading else "off"))
        rows.append(("endpoints", ", ".join(ep.name for ep in core.provider.endpoints) or "-"))
        return rows

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else "\n".join(f"{k}: {v}" for k, v in self._summary()))

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        return f"<table><caption>{type(self).__name__}</caption>{cells}</table>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("coinguard clients cannot be pickled: they hold keys and connections")

    def __repr__(self) -> str:
        core = getattr(self, "_core", None)
        if core is None:  # a constructor that failed: tracebacks print its locals too
            return f"{type(self).__name__}(not constructed)"
        trade = repr(core.trade) if core.trade else "disabled"
        plan = f", plan={core.provider.plan!r}" if core.provider.plan else ""
        return (
            f"{type(self).__name__}(provider={core.provider.name!r}{plan}, "
            f"base_url='{core.base_url}', read={core.read!r}, trade={trade})"
        )
