"""The steps an attempt is made of (sans-I/O): what the sync and async shells carry out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import httpx

from ._exceptions import QuotaExceededError
from ._quota import Quota, Reservation

__all__ = ["Departure", "Run", "Send", "Sleep"]

_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


class Departure:
    """A call's last quota check, made as its bytes leave (httpcore's ``trace`` hook, when it
    starts writing the request). A connect stall after the check before sending can otherwise
    carry a call into a later window, beside that window's burst from other workers.

    ``late()`` is cheap and true only when the call leaves later than its admission allows;
    ``recheck()`` then re-admits it (``Quota.sent``) and says how long to hold it. A call that
    no longer fits within its deadline raises :class:`QuotaExceededError` there: not a byte of
    it was written, and its reservation is given up (``refused``).
    """

    __slots__ = ("clock", "deadline", "heard", "left", "quota", "refused", "reservation")

    def __init__(
        self, quota: Quota, reservation: Reservation, deadline: float, clock: Callable[[], float]
    ) -> None:
        self.quota, self.reservation = quota, reservation
        self.deadline, self.clock = deadline, clock
        self.refused = False
        self.left: float | None = None  # when its bytes left (after any hold)
        self.heard: float | None = None  # when the answer's headers were in

    def late(self) -> bool:
        """True if the call leaves later than its reservation counted it."""
        return self.quota.leaves_late(self.reservation, self.clock())

    def leaving(self) -> None:
        """Note that the bytes leave now (for the quota's round-trip bound, ``Quota.took``)."""
        self.left = self.clock()

    def hearing(self) -> None:
        """Note that the answer's headers are in now: the server stamped the call before."""
        self.heard = self.clock()

    def recheck(self) -> float:
        """Re-admit the call as it leaves now; the seconds to hold it (0: it may go)."""
        now = self.clock()
        try:
            self.reservation = self.quota.sent(
                self.reservation, at=now, max_wait=max(0.0, self.deadline - now)
            )
        except QuotaExceededError:
            self.refused = True
            raise
        return self.reservation.wait


class Send(NamedTuple):
    """Send this request with this auth flow (None: without the key); answer the response.

    ``depart``: the quota's check to run as the request's bytes leave, if it has a quota;
    ``call``: the call the request belongs to, when it is not the one being made (a clock
    sync before an order): a failure is that call's, never "the order may have executed"."""

    request: httpx.Request
    auth: httpx.Auth | None
    depart: Departure | None = None
    call: Any = None


class Sleep(NamedTuple):
    """Wait this many seconds (the injected sleep)."""

    seconds: float


class Run(NamedTuple):
    """Call ``func``; ``blocking`` means it may do I/O (keep it off an event loop)."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    blocking: bool = False
    kwargs: Mapping[str, Any] = _NO_KWARGS
