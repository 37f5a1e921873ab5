"""The two thin shells, :class:`Client` and :class:`AsyncClient`: they load, sleep, await and send.

Every decision is taken by :class:`coinguard._core.ClientCore`; the retry loop is tenacity's,
configured by :func:`coinguard._retry.make_retrying_kwargs`.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx
import tenacity

from ._core import Call
from ._data_calls import AsyncDataCalls, DataCalls
from ._exceptions import CoinguardError, OrderOutcomeUnknownError
from ._flow import MAX_AGE, MISSING, Run, Send, Sleep, wrap_keys
from ._journal import AuditArg
from ._keys import KeyInput, KeySlot
from ._observe import Observer
from ._provider import Provider
from ._quota import QuotaPolicy, QuotaStore
from ._reconcile import reconcile, reconcile_interrupted
from ._redact import scrub_reason
from ._retry import CallState, RetryDetails, RetryPolicy, final_error, interrupted
from ._settings import Settings
from ._steps import Departure
from ._verify import KeyReport, judge

__all__ = ["AsyncClient", "Client"]


#: httpcore's trace events as it starts writing a request (HTTP/1.1 and HTTP/2)
_WRITING = "send_request_headers.started"
_HEARD = "receive_response_headers.complete"


class Client(DataCalls):
    """A synchronous client with scoped keys, origin-pinned auth, quotas and safe retries.

    The quota is counted per key slot (read, trade), so a rotated key keeps spending the same
    budget; ``quota_account`` names the provider account instead, for keys that share one.
    A provider that signs its requests (:class:`coinguard.SignedKey`) also needs
    ``read_secret`` (and ``trade_secret`` to trade): each scope is a key pair.

    ``audit`` journals every attempt to a JSON Lines file (a path or an :class:`AuditLog`;
    ``COINGUARD_AUDIT_LOG`` when not given, ``False`` for none); ``observers`` get every
    attempt too (:class:`Watch`, :class:`Tracing`, :class:`Metrics`).

    >>> with Client(provider="tokenmetrics") as tm:           # doctest: +SKIP
    ...     btc = tm.get("/price", params={"symbol": "BTC"})
    ...     print(tm.quota)
    """

    _http: httpx.Client

    def __init__(
        self,
        *,
        provider: Provider | str = "generic",
        read_key: KeyInput | None = None,
        trade_key: KeyInput | None = None,
        read_secret: KeyInput | None = None,
        trade_secret: KeyInput | None = None,
        allow_trading: bool = False,
        base_url: str | None = None,
        plan: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        http_client: httpx.Client | None = None,
        settings: Settings | None = None,
        env_file: str | Path | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        follow_redirects: bool = False,
        max_redirects: int = 5,
        quota: QuotaPolicy | None = MISSING,
        quota_store: str | QuotaStore | None = None,
        on_quota: Literal["wait", "raise"] = "wait",
        max_wait: float = 60.0,
        quota_account: str | None = None,
        on_retry: Callable[[RetryDetails], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] | None = None,
        verify_on_start: bool = False,
        audit: AuditArg = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        # wrapped first: a traceback of any failure below shows this frame's locals
        read_key, trade_key = wrap_keys(read_key, trade_key)
        read_secret, trade_secret = wrap_keys(read_secret, trade_secret, "secret")
        super().__init__(
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
            quota=quota,
            quota_store=quota_store,
            on_quota=on_quota,
            max_wait=max_wait,
            quota_account=quota_account,
            on_retry=on_retry,
            clock=clock,
            jitter=jitter or random.random,
            audit=audit,
            observers=observers,
        )
        self._sleep = sleep
        self._owns_http = http_client is None
        if http_client is not None:
            self._core.check_http_client(http_client)
        self._http = http_client or httpx.Client(**self._core.http_defaults())
        if verify_on_start:
            try:
                self.verify_key()
            except BaseException:
                self.close()  # the caller never gets the object, so nobody else could close it
                raise

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Send a request and return the decoded JSON body.

        Read requests carry only the read key, trade requests only the trade key. ``raw=True``
        returns a :class:`Response` with the status and headers beside the body.

        >>> r = client.request("GET", "/price", raw=True)  # doctest: +SKIP
        >>> r.status_code, r.headers["ratelimit"]  # doctest: +SKIP
        (200, '"w1";r=49;t=1')
        """
        call = self._core.prepare(
            method,
            url,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        if raw:
            call = dataclasses.replace(call, raw=True)
        return self._run_order(call, self._core.slot(call))

    def verify_key(
        self,
        *,
        on_finding: str = "raise",
        max_age: timedelta = MAX_AGE,
        hook: Callable[[str], None] | None = None,
    ) -> list[KeyReport]:
        """Ask the provider what each configured key can do; flag over-privileged keys.

        A read key that can trade or withdraw, or a trade key that can withdraw, raises
        :class:`OverPrivilegedKeyError` (``on_finding="warn"`` warns, ``"ignore"`` only reports).
        A key older than ``max_age`` or expiring within 7 days gives a :class:`KeyAgeWarning`.
        Every finding is logged on ``coinguard.keys`` and passed to ``hook`` if given.

        >>> client.verify_key()[0].permissions.can_trade  # doctest: +SKIP
        False
        """
        reports = []
        for call, slot in self._core.key_checks():
            report = self._core.key_report(slot, self._run(call, slot), max_age=max_age)
            learned = self._learning(slot, report)
            if learned is not None:
                learned()
            reports.append(report)
        self._tell_findings(reports)
        return judge(reports, on_finding, hook)

    def _run_order(self, call: Call, slot: KeySlot) -> Any:
        """:meth:`_run`; an order whose outcome was lost is reconciled (``_reconcile``)."""
        try:
            return self._run(call, slot)
        except OrderOutcomeUnknownError as exc:
            if call.client_order_id is None:
                raise
            steps = reconcile(self._core, call, slot, exc)
        value: Any = None
        failure: CoinguardError | None = None
        try:
            while True:
                try:
                    step = steps.send(value) if failure is None else steps.throw(failure)
                except StopIteration as done:
                    self.note_placed(call, done.value)
                    return done.value
                value, failure = None, None
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                    continue
                try:
                    value = self._run(step.call, step.slot)
                except CoinguardError as exc:
                    failure = exc
        except BaseException as exc:
            if not isinstance(exc, Exception):  # interrupted: nobody else can say
                reconcile_interrupted(call, exc)
            raise

    def _run(self, call: Call, slot: KeySlot) -> Any:
        state = CallState(started=self._clock())
        try:
            return self._attempt(call, slot, state)
        except CoinguardError as exc:
            first = self._hand_over(exc, call, state)
        retrying = tenacity.Retrying(sleep=self._sleep, **self._retrying_kwargs(call, slot, state))
        try:
            return retrying(self._attempts_after, first, call, slot, state)
        except CoinguardError as exc:
            error = final_error(exc, state)
        except BaseException:  # Ctrl+C in a backoff sleep: the error cannot carry the news
            interrupted(state)
            raise
        raise error

    def _attempts_after(
        self, first: list[CoinguardError], call: Call, slot: KeySlot, state: CallState
    ) -> Any:
        if first:
            raise first.pop()
        return self._attempt(call, slot, state)

    def _attempt(self, call: Call, slot: KeySlot, state: CallState) -> Any:
        """Carry out one attempt: the steps come from :meth:`Base._flow`, the I/O happens here.

        Anything a step raises (a store error, ``KeyboardInterrupt`` in a sleep) is thrown into
        the flow, so it can give back what it holds before the error goes on."""
        flow = self._flow(call, slot, state)
        value: Any = None
        step: Any = None
        failure: BaseException | None = None  # thrown into the flow
        while True:
            try:
                step = flow.send(value) if failure is None else flow.throw(failure)
            except StopIteration as done:
                return done.value
            except BaseException:
                # the last step (an observation holds the answer's headers, which a server
                # may have echoed a key into) must not stay a local of the raising frame
                step = value = None
                raise
            failure = None
            if isinstance(step, Send):
                if step.depart is not None:
                    self._on_departure(step.request, step.depart)
                try:
                    value = self._http.send(step.request, auth=step.auth, follow_redirects=False)
                    scrub_reason(value.extensions)
                except Exception as exc:
                    failed = step.call or call  # the call this request was made for
                    value, failure = None, self._core.translate(failed, exc, now=self._clock())
                except BaseException as exc:
                    value, failure = None, exc
            else:
                try:
                    value = self._step(step)
                except BaseException as exc:
                    value, failure = None, exc

    def _step(self, step: Sleep | Run) -> Any:
        if isinstance(step, Sleep):
            self._sleep(step.seconds)
            return None
        return step.func(*step.args, **step.kwargs)

    def _on_departure(self, request: httpx.Request, depart: Departure) -> None:
        """Hold the request, as httpcore starts writing it, until its quota says it fits."""
        inner = request.extensions.get("trace")

        def trace(name: str, info: dict[str, Any]) -> None:
            if inner is not None:
                inner(name, info)
            if name.endswith(_WRITING):
                if depart.late():
                    while (wait := depart.recheck()) > 0:
                        self._sleep(wait)
                depart.leaving()
            elif name.endswith(_HEARD):
                depart.hearing()

        request.extensions["trace"] = trace

    def get(self, url: str, **kwargs: Any) -> Any:
        """``GET`` a read route and return the decoded JSON."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        """``POST``: a trade unless the provider lists the route in ``read_routes``."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        """``PUT``: a trade unless listed in ``read_routes``."""
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        """``DELETE``: a trade unless listed in ``read_routes``."""
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        """Close the connection pool (not a pool passed in as ``http_client``) and quota stores."""
        self._core.closed = True
        self._close_quotas()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(AsyncDataCalls):
    """The asyncio twin of :class:`Client`: same arguments, same behaviour.

    >>> async with AsyncClient(provider="tokenmetrics") as tm:  # doctest: +SKIP
    ...     btc = await tm.get("/price", params={"symbol": "BTC"})
    """

    _http: httpx.AsyncClient

    def __init__(
        self,
        *,
        provider: Provider | str = "generic",
        read_key: KeyInput | None = None,
        trade_key: KeyInput | None = None,
        read_secret: KeyInput | None = None,
        trade_secret: KeyInput | None = None,
        allow_trading: bool = False,
        base_url: str | None = None,
        plan: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        http_client: httpx.AsyncClient | None = None,
        settings: Settings | None = None,
        env_file: str | Path | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        follow_redirects: bool = False,
        max_redirects: int = 5,
        quota: QuotaPolicy | None = MISSING,
        quota_store: str | QuotaStore | None = None,
        on_quota: Literal["wait", "raise"] = "wait",
        max_wait: float = 60.0,
        quota_account: str | None = None,
        on_retry: Callable[[RetryDetails], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] | None = None,
        verify_on_start: bool = False,
        audit: AuditArg = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        # wrapped first: a traceback of any failure below shows this frame's locals
        read_key, trade_key = wrap_keys(read_key, trade_key)
        read_secret, trade_secret = wrap_keys(read_secret, trade_secret, "secret")
        super().__init__(
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
            quota=quota,
            quota_store=quota_store,
            on_quota=on_quota,
            max_wait=max_wait,
            quota_account=quota_account,
            on_retry=on_retry,
            clock=clock,
            jitter=jitter or random.random,
            audit=audit,
            observers=observers,
        )
        self._sleep = sleep
        self._owns_http = http_client is None
        if http_client is not None:
            self._core.check_http_client(http_client)
        self._http = http_client or httpx.AsyncClient(**self._core.http_defaults())
        # Checked before the first request, or on ``async with`` (a constructor cannot await).
        self._verify_pending = verify_on_start
        self._verify_lock = anyio.Lock()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Send a request and return the decoded JSON body (see :meth:`Client.request`)."""
        if self._verify_pending:
            await self._verify_once()
        call = self._core.prepare(
            method,
            url,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        if raw:
            call = dataclasses.replace(call, raw=True)
        return await self._run_order(call, self._core.slot(call))

    async def verify_key(
        self,
        *,
        on_finding: str = "raise",
        max_age: timedelta = MAX_AGE,
        hook: Callable[[str], None] | None = None,
    ) -> list[KeyReport]:
        """Ask the provider what each configured key can do (see :meth:`Client.verify_key`)."""
        reports = []
        for call, slot in self._core.key_checks():
            report = self._core.key_report(slot, await self._run(call, slot), max_age=max_age)
            learned = self._learning(slot, report)
            if learned is not None:  # a shared store is I/O: never on the event loop
                await anyio.to_thread.run_sync(learned)
            reports.append(report)
        self._tell_findings(reports)
        return judge(reports, on_finding, hook)

    async def _run_order(self, call: Call, slot: KeySlot) -> Any:
        """:meth:`_run`; an order whose outcome was lost is reconciled (``_reconcile``)."""
        try:
            return await self._run(call, slot)
        except OrderOutcomeUnknownError as exc:
            if call.client_order_id is None:
                raise
            steps = reconcile(self._core, call, slot, exc)
        value: Any = None
        failure: CoinguardError | None = None
        try:
            while True:
                try:
                    step = steps.send(value) if failure is None else steps.throw(failure)
                except StopIteration as done:
                    self.note_placed(call, done.value)
                    return done.value
                value, failure = None, None
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    continue
                try:
                    value = await self._run(step.call, step.slot)
                except CoinguardError as exc:
                    failure = exc
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled, interrupted: nobody else can say
                reconcile_interrupted(call, exc)
            raise

    async def _run(self, call: Call, slot: KeySlot) -> Any:
        state = CallState(started=self._clock())
        try:
            return await self._attempt(call, slot, state)
        except CoinguardError as exc:
            first = self._hand_over(exc, call, state)
        retrying = tenacity.AsyncRetrying(
            sleep=self._sleep, **self._retrying_kwargs(call, slot, state)
        )
        try:
            return await retrying(self._attempts_after, first, call, slot, state)
        except CoinguardError as exc:
            error = final_error(exc, state)
        except BaseException:  # a cancelled task: the CancelledError cannot carry the news
            interrupted(state)
            raise
        raise error

    async def _attempts_after(
        self, first: list[CoinguardError], call: Call, slot: KeySlot, state: CallState
    ) -> Any:
        if first:
            raise first.pop()
        return await self._attempt(call, slot, state)

    async def _attempt(self, call: Call, slot: KeySlot, state: CallState) -> Any:
        """Carry out one attempt: the steps come from :meth:`Base._flow`; blocking ones
        (a secret-manager fetch, a SQLite or Redis quota store) run in a worker thread."""
        flow = self._flow(call, slot, state)
        value: Any = None
        step: Any = None
        failure: BaseException | None = None  # thrown into the flow
        unwinding = False  # after a cancellation the flow's clean-up steps must still run
        while True:
            try:
                step = flow.send(value) if failure is None else flow.throw(failure)
            except StopIteration as done:
                return done.value
            except BaseException:
                # the last step (an observation holds the answer's headers, which a server
                # may have echoed a key into) must not stay a local of the raising frame
                step = value = None
                raise
            failure = None
            try:
                if not isinstance(step, Send):
                    if unwinding:
                        with anyio.CancelScope(shield=True):
                            value = await self._step(step)
                    else:
                        value = await self._step(step)
                    continue
                if step.depart is not None:
                    self._on_departure(step.request, step.depart)
                try:
                    value = await self._http.send(
                        step.request, auth=step.auth, follow_redirects=False
                    )
                    scrub_reason(value.extensions)
                except Exception as exc:
                    failed = step.call or call  # the call this request was made for
                    value, failure = None, self._core.translate(failed, exc, now=self._clock())
            except BaseException as exc:
                value, failure, unwinding = None, exc, True

    async def _step(self, step: Sleep | Run) -> Any:
        if isinstance(step, Sleep):
            await self._sleep(step.seconds)
            return None
        if step.blocking:
            call_it = functools.partial(step.func, *step.args, **step.kwargs)
            return await anyio.to_thread.run_sync(call_it)
        return step.func(*step.args, **step.kwargs)

    def _on_departure(self, request: httpx.Request, depart: Departure) -> None:
        """Hold the request, as httpcore starts writing it, until its quota says it fits (a
        re-check that needs store I/O runs in a worker thread, off the event loop)."""
        inner = request.extensions.get("trace")
        recheck = Run(depart.recheck, (), blocking=depart.quota.blocking)

        async def trace(name: str, info: dict[str, Any]) -> None:
            if inner is not None:
                await inner(name, info)
            if name.endswith(_WRITING):
                if depart.late():
                    while (wait := await self._step(recheck)) > 0:
                        await self._sleep(wait)
                depart.leaving()
            elif name.endswith(_HEARD):
                depart.hearing()

        request.extensions["trace"] = trace

    async def _verify_once(self) -> None:
        async with self._verify_lock:
            if self._verify_pending:
                await self.verify_key()
                self._verify_pending = False

    async def get(self, url: str, **kwargs: Any) -> Any:
        """``GET`` a read route and return the decoded JSON."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Any:
        """``POST``: a trade unless the provider lists the route in ``read_routes``."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Any:
        """``PUT``: a trade unless listed in ``read_routes``."""
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Any:
        """``DELETE``: a trade unless listed in ``read_routes``."""
        return await self.request("DELETE", url, **kwargs)

    async def aclose(self) -> None:
        """Close the connection pool (not a pool passed in as ``http_client``) and quota stores."""
        self._core.closed = True
        self._close_quotas()
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        if self._verify_pending:
            try:
                await self._verify_once()
            except BaseException:
                await self.aclose()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
