"""Orders reconciled instead of left unknown (sans-I/O): what to do after an order's outcome
was lost, for a provider that declares :class:`coinguard.ClientOrderId`.

:func:`reconcile` yields the calls to make (:class:`Nested`: a whole call, with its own retries
and quota) and the waits between lookups (:class:`~coinguard._flow.Sleep`); the shells run
them. It looks the order up by its client id on each lookup route the provider declares, in
turn, polling a few times while they all say "not found" (a new order can be invisible for a
moment); returns the order it finds; and raises
:class:`OrderOutcomeUnknownError` with the id and everything it tried when it cannot tell. It
re-sends the order, with the same id, only where the provider says a used id is refused for
good (``ClientOrderId.max_sends`` above 1) and every lookup said "not found".
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping
from typing import Any, NamedTuple

from ._call import Call
from ._core import ClientCore
from ._exceptions import APIStatusError, CoinguardError, OrderOutcomeUnknownError
from ._flow import Sleep
from ._keys import KeySlot
from ._provider import ClientOrderId
from ._redact import redact

__all__ = ["Nested", "reconcile", "reconcile_interrupted"]

log = logging.getLogger("coinguard.orders")


class Nested(NamedTuple):
    """Run ``call`` as a whole call (retries, quota) with ``slot``; answer its result, or
    have its error thrown back."""

    call: Call
    slot: KeySlot


_ABSENT = object()  # every lookup said "not found"
_UNSURE = object()  # a lookup failed some other way


def reconcile(
    core: ClientCore, call: Call, slot: KeySlot, lost: OrderOutcomeUnknownError
) -> Generator[Sleep | Nested, Any, Any]:
    """The steps that find out what became of ``call`` after ``lost``; returns the order."""
    spec = core.provider.client_order_id
    client_id = call.client_order_id
    assert spec is not None
    assert client_id is not None
    shown = redact(client_id)  # a caller may have put a key there: only the shown form
    tried = [f"sent: {_short(lost)}"]
    sends = 1
    while True:
        found = yield from _look_up(core, call, spec, client_id, tried)
        if found is not _ABSENT and found is not _UNSURE:
            log.info("%s: reconciled, order %s exists", call.describe(), shown)
            return found
        if found is _UNSURE or sends >= spec.max_sends:
            break
        sends += 1
        tried.append(
            "re-sent with the same client order id"
            if spec.lookup is None
            else "not found in any lookup: re-sent with the same client order id"
        )
        log.warning(
            "%s: order %s %s; sending it again with the same client order id",
            call.describe(),
            shown,
            "lost its answer" if spec.lookup is None else "not found",
        )
        try:
            return (yield Nested(call, slot))
        except OrderOutcomeUnknownError as exc:
            tried.append(f"re-send: {_short(exc)}")
        except APIStatusError as exc:
            if _code(core, exc) not in spec.duplicate_codes:
                raise
            tried.append("re-send: refused as a duplicate, so the first one exists")
    if found is _ABSENT:
        tried.append(
            "not sent again: not found for a while is no proof, and a re-send of an order "
            "that did execute could execute twice"
        )
    raise OrderOutcomeUnknownError(
        f"{call.describe()}: the outcome of order {shown} is still unknown after "
        f"{'; '.join(tried)}. Look it up by its client order id before sending it again",
        idempotency_key=call.idempotency_key,
        sent_at=call.sent_at,
        method=call.method,
        url=lost.url,
        client_order_id=shown,
        tried=tuple(tried),
    )


def reconcile_interrupted(call: Call, exc: BaseException) -> None:
    """Say, as a warning, that an order being reconciled may exist: the interruption
    (Ctrl+C, a cancelled task) that stopped the lookups cannot carry the news."""
    log.warning(
        "%s: interrupted (%s) while finding out what became of order %s: it may exist;"
        " look it up by its client order id before sending it again",
        call.describe(),
        type(exc).__name__,
        redact(call.client_order_id or ""),
    )


def _look_up(
    core: ClientCore, call: Call, spec: ClientOrderId, client_id: str, tried: list[str]
) -> Generator[Sleep | Nested, Any, Any]:
    """The order found, ``_ABSENT`` when every poll said "not found", else ``_UNSURE``.

    A poll asks each lookup route in turn (Kraken: open orders, then closed ones) and stops
    at the first that finds the order."""
    if not spec.lookup_routes:  # no lookup by client id: a re-send with the same id is the guard
        tried.append("no lookup by client order id")
        return _ABSENT
    params = _copied(call.params, spec.copy_params)
    params[spec.lookup_param] = client_id
    lookups = [core.prepare(method, path, params=params) for method, path in spec.lookup_routes]
    for poll in range(1, spec.polls + 1):
        for lookup in lookups:
            where = f"lookup {poll}" + (f" ({lookup.describe()})" if len(lookups) > 1 else "")
            try:
                answer = yield Nested(lookup, core.slot(lookup))
            except CoinguardError as exc:
                code = _code(core, exc)
                if code is None or code not in spec.not_found_codes:
                    tried.append(f"{where}: {_short(exc)}")
                    return _UNSURE
                tried.append(f"{where}: not found")
                continue
            if spec.found is None:
                return answer
            order = spec.found(answer, client_id)
            if order is not None:
                return order
            tried.append(f"{where}: not found")
        if poll < spec.polls:
            yield Sleep(spec.poll_interval)
    return _ABSENT


def _copied(params: Any, names: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(params, Mapping):
        return {n: params[n] for n in names if n in params}
    pairs = [tuple(p) for p in params or ()]
    return {k: v for k, v in pairs if k in names}


def _code(core: ClientCore, exc: CoinguardError) -> str | None:
    body = getattr(exc, "body", None)
    return core.provider.error_code(body) if body is not None else None


def _short(exc: CoinguardError) -> str:
    """An error as one line of what was tried (its class and status, never a body)."""
    status = getattr(exc, "status_code", None)
    return type(exc).__name__ + (f" (HTTP {status})" if status else "")
