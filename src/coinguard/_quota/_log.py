"""The exact window algorithm, in one place, with no I/O.

An entry admitted at ``t`` with cost ``c`` counts in a rolling window of length ``L`` at every
instant ``x`` with ``t <= x < t + L``. New entries are only ever committed at a time no earlier
than every entry already in the log (FIFO), so a new entry can only complete intervals that end
with it: it fits iff the entries still counting at its time, plus its cost, stay within the
limit. That makes one check per window exact, and the earliest admissible time is the moment
enough of the oldest entries have left.

:class:`KeyState` is that algorithm, once, over windows that answer a few questions
(:class:`Rolling`): the memory store's logs in lists (``_rolling``), the SQLite store's in a
table (``_table``). ``KeyState.reserve_reference`` is the definition of a reservation; the
inlined paths of ``reserve`` (memory only, where a call costs about a microsecond) are held
to it by a randomized test. ``_redis_script.lua`` is the same algorithm in Lua; all stores
are run against one table of scenarios in the tests.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import NamedTuple

from .._exceptions import QuotaExceededError
from ._calendar import CalendarCounter, month_id, month_start
from ._policy import WindowSpec
from ._rolling import Rolling, RollingLog, _after

__all__ = [
    "CalendarCounter",
    "KeyState",
    "Meta",
    "Rolling",
    "RollingLog",
    "Snapshot",
    "Sync",
    "month_id",
    "month_start",
]


def step_tolerance(specs: tuple[WindowSpec, ...]) -> float:
    """How far back a clock reading may be before it counts as a step: half the shortest
    rolling window, at most a second (threads reading the clock before taking the lock are
    never that far apart; a shift that small could admit a call early)."""
    rolling = [spec.length for spec in specs if spec.kind == "r"]
    return min(1.0, 0.5 * min(rolling)) if rolling else 1.0


def _exceeded(why: str, wait: float) -> QuotaExceededError:
    return QuotaExceededError(
        f"quota window {why} is full for {wait:.3f}s", window=why, retry_after=wait
    )


class Meta:
    """Per-key state shared by all windows: the FIFO tail, the penalty box, and the key's
    timeline: ``drift`` (how far it runs ahead of the wall clock, the sum of the steps back
    it has seen) and ``seen`` (its latest reading)."""

    __slots__ = ("blocked", "blocked_why", "drift", "last", "last_why", "moves", "seen")

    def __init__(self) -> None:
        self.last = 0.0
        self.last_why = ""
        self.blocked = 0.0
        self.blocked_why = ""
        self.moves = 0  # calls recounted later by ``KeyState.correct``: reservations to re-check
        self.drift = 0.0
        self.seen = 0.0


class Sync(NamedTuple):
    """What a server observation asks a store to do, in the store's own terms.

    ``targets``: ``(window index, used according to the server, seconds until it resets or
    None)``; the store raises its count to ``used`` and never lowers it. ``penalty``: seconds
    every caller of the key must wait. ``debits``: ``(window index, cost)`` the server billed
    beyond what a call reserved (added now), or short of it (a refund, taken from the slot the
    call was counted in, at ``debit_at``; only calendar windows are refunded, never below 0).
    """

    targets: tuple[tuple[int, int, float | None], ...] = ()
    penalty: float | None = None
    penalty_why: str = "penalty"
    debits: tuple[tuple[int, int], ...] = ()
    debit_at: float = 0.0


class Snapshot(NamedTuple):
    """A store's reading of one key: per window ``(used, resets_at)``, the penalty, the time,
    and why the key is in the penalty box."""

    windows: tuple[tuple[int, float | None], ...]
    blocked_until: float
    now: float
    blocked_why: str = ""


Log = Rolling | CalendarCounter


class KeyState:
    """All windows of one key: the reservation decision, server sync and status."""

    __slots__ = (
        "calendar",
        "cals",
        "detour",
        "first",
        "inline",
        "logs",
        "margin",
        "meta",
        "pairs",
        "rolling",
        "specs",
        "tolerance",
    )

    def __init__(self, specs: tuple[WindowSpec, ...], logs: tuple[Log, ...], meta: Meta) -> None:
        self.specs = specs
        self.logs = logs
        self.meta = meta
        self.first = specs[0].name if specs else "quota"
        self.tolerance = step_tolerance(specs)
        self.pairs = tuple(zip(logs, specs, strict=True))
        self.margin = max((spec.margin for spec in specs), default=0.0)
        self.calendar = any(isinstance(log, CalendarCounter) for log in logs)
        # the rolling and the calendar windows apart, for the inlined paths of reserve
        self.rolling: tuple[tuple[RollingLog, int, str], ...] = tuple(
            (log, spec.limit, spec.name) for log, spec in self.pairs if isinstance(log, RollingLog)
        )
        # The inlined paths read a RollingLog's lists; any other log goes the general way.
        self.inline = len(self.rolling) == sum(not isinstance(log, CalendarCounter) for log in logs)
        self.detour = self.calendar or not self.inline
        self.cals: tuple[tuple[CalendarCounter, int], ...] = tuple(
            (log, spec.limit) for log, spec in self.pairs if isinstance(log, CalendarCounter)
        )

    @staticmethod
    def new_log(spec: WindowSpec) -> RollingLog | CalendarCounter:
        """An empty log for ``spec``."""
        if spec.kind == "r":
            return RollingLog(spec.length)
        return CalendarCounter(spec.length, spec.margin, month=spec.kind == "m")

    def reserve(self, now: float, cost: int, max_wait: float) -> float:
        """Commit ``cost`` at the earliest admissible time and return it.

        Raises :class:`QuotaExceededError`, committing nothing, if that is more than
        ``max_wait`` seconds after ``now``.
        """
        meta = self.meta
        now += meta.drift  # the key's timeline (see clock), inlined: this runs on every call
        if now >= meta.seen:
            meta.seen = now
        else:
            now = self.stepped(now)
        t, why = now, ""
        if meta.last > t:
            t, why = meta.last, meta.last_why
        if meta.blocked > t:
            t, why = meta.blocked, meta.blocked_why
        if not cost:
            if t - now > max_wait:
                raise _exceeded(why or self.first, t - now)
            return t
        # RollingLog.prune/earliest/commit inlined: this runs on every request, under the lock.
        rolling = self.rolling
        if self.detour:
            # With calendar windows: inlined while every window has room at ``t`` and ``t``
            # counts in one slot of each (not within a margin of its end); else the reference.
            if not self.inline:
                return self._admit(now, t, why, cost, max_wait)
            for log, limit, _ in rolling:
                times, h = log.times, log.head
                if h < len(times) and times[h] + log.length <= now:
                    log.prune(now)
                if log.cum - log.base + cost > limit:
                    return self._admit(now, t, why, cost, max_wait)
            for cal, limit in self.cals:
                if len(cal.counts) > 2:
                    cal.prune(now)
                if not cal.lo <= t < cal.hi and not cal.locate(t):
                    return self._admit(now, t, why, cost, max_wait)
                if cal.counts.get(cal.cur, 0) + cost > limit:
                    return self._admit(now, t, why, cost, max_wait)
            if t - now > max_wait:
                raise _exceeded(why or self.first, t - now)
            for log, _, _ in rolling:
                log.cum += cost
                log.times.append(t)
                log.cums.append(log.cum)
            for cal, _ in self.cals:
                counts = cal.counts
                counts[cal.cur] = counts.get(cal.cur, 0) + cost
            meta.last = t
            if why:
                meta.last_why = why
            return t
        if len(rolling) == 1:  # the loop below, unrolled: ~10 % of a one-window reserve
            log, limit, name = rolling[0]
            times = log.times
            h = log.head
            if h < len(times) and times[h] + log.length <= now:
                log.prune(now)
            cum = log.cum
            excess = cum - log.base + cost - limit
            if excess > 0:
                x = _after(times[bisect_left(log.cums, log.base + excess, lo=log.head)], log.length)
                if x > t:
                    t, why = x, name
                if t - now > max_wait:
                    raise _exceeded(why, t - now)
            elif t - now > max_wait:
                raise _exceeded(why or self.first, t - now)
            log.cum = cum = cum + cost
            times.append(t)
            log.cums.append(cum)
            meta.last = t
            if why:
                meta.last_why = why
            return t
        for log, limit, name in rolling:
            times, h = log.times, log.head
            if h < len(times) and times[h] + log.length <= now:
                log.prune(now)
            excess = log.cum - log.base + cost - limit
            if excess > 0:
                x = _after(times[bisect_left(log.cums, log.base + excess, lo=log.head)], log.length)
                if x > t:
                    t, why = x, name
        if t - now > max_wait:
            raise _exceeded(why or self.first, t - now)
        for log, _, _ in rolling:
            log.cum += cost
            log.times.append(t)
            log.cums.append(log.cum)
        meta.last = t
        if why:
            meta.last_why = why
        return t

    def reserve_reference(self, now: float, cost: int, max_wait: float) -> float:
        """``reserve`` without inlining: the definition the inlined paths must match (the
        randomized tests hold them to it), and the path every store whose logs are not in
        memory takes."""
        meta = self.meta
        now = self.clock(now)
        t, why = now, ""
        if meta.last > t:
            t, why = meta.last, meta.last_why
        if meta.blocked > t:
            t, why = meta.blocked, meta.blocked_why
        if not cost:
            if t - now > max_wait:
                raise _exceeded(why or self.first, t - now)
            return t
        return self._admit(now, t, why, cost, max_wait)

    def _admit(self, now: float, t: float, why: str, cost: int, max_wait: float) -> float:
        """Fit ``cost`` from ``t`` on in every window, then commit it everywhere."""
        t, why = self._fit(now, t, why, cost)
        if t - now > max_wait:
            raise _exceeded(why or self.first, t - now)
        for each in self.logs:
            each.commit(t, cost)
        meta = self.meta
        meta.last, meta.last_why = t, why or meta.last_why
        return t

    def correct(
        self, at: float, cost: int, answered: float, now: float, lead: float = 0.0
    ) -> list[tuple[int, float]]:
        """Count a call admitted at ``at`` as if it had arrived as late as ``answered`` allows.

        The server stamps a call somewhere between its sending and its answer. A call counts
        in a rolling window until ``margin`` after its admission; one answered later than that
        may have been stamped later, so it is moved to ``answered - margin - lead``, which makes
        it count until a full window after its answer, less ``lead``: what the fastest round
        trips seen say the server's stamp of it and of the next call must be apart at least
        (:meth:`Quota.took`; 0 when unknown). In a calendar window it also counts in the
        slot of its answer. Returns what changed as ``(window index, time)``: the rolling entry
        moved to ``time``, or the cost added in the slot of ``time`` (empty if nothing did, e.g.
        for an entry already moved). Reservations made since must then be re-checked with
        :meth:`settle`.
        """
        changed: list[tuple[int, float]] = []
        if not cost:
            return changed
        now = self.clock(now)
        meta = self.meta
        for i, (log, spec) in enumerate(self.pairs):
            if isinstance(log, Rolling):
                late = answered - spec.margin - lead
                if late > at:
                    log.prune(now)
                    # an entry that is neither there nor expired was moved already: once only
                    if log.remove(at, cost) or _after(at, log.length) <= now:
                        log.add(late, cost)
                        changed.append((i, late))
                        if late > meta.last:  # later admissions must not go before it
                            meta.last = late
            else:
                wid = log.wid(answered)
                if wid not in log.ids(at):
                    log.counts[wid] = log.counts.get(wid, 0) + cost
                    changed.append((i, answered))
        if changed:
            meta.moves += 1
        return changed

    def settle(self, at: float, cost: int, now: float, max_wait: float) -> float:
        """Check a reservation made for ``at`` as the call leaves at ``now``.

        The call may go under its reservation if it leaves within ``margin`` of ``at``, outside
        the penalty box, and every window is within its limit at that moment (which only a
        recount or a server sync since the reservation can spoil). Otherwise it gives up its
        place and is admitted again at the earliest time, from the moment it leaves, that fits:
        a call that leaves late counts from when it left. Returns the time it now counts from
        (``at`` if it may go as reserved).
        """
        now = self.clock(now)
        if not cost:
            return at
        x = at if at > now else now
        meta = self.meta
        if x - at <= self.margin and meta.blocked <= x:
            for log, spec in self.pairs:
                if isinstance(log, Rolling):
                    if log.count_at(x) > spec.limit:
                        break
                elif any(log.counts.get(wid, 0) > spec.limit for wid in log.ids(at)):
                    break
            else:
                return at
        # Re-admit it at the earliest time that fits among the calls counting then, rather
        # than behind every reservation: the calls after it re-check themselves as they leave.
        # Never before the latest reading any caller took, though: calls admitted up to that
        # reading may have left already, and this reading may be older (taken before a thread
        # switch or a wait for the store's lock).
        for log in self.logs:
            if isinstance(log, Rolling):
                log.remove(at, cost)
            else:
                for wid in log.ids(at):
                    if wid in log.counts:  # a slot already over is not brought back
                        log.counts[wid] -= cost
        t, why = (x if x > meta.seen else meta.seen), ""
        if meta.blocked > t:
            t, why = meta.blocked, meta.blocked_why
        moved = True
        while moved:
            moved = False
            for log, spec in self.pairs:
                if isinstance(log, Rolling):
                    y = log.earliest_at(t, cost, spec.limit)
                else:
                    y = log.earliest(t, cost, spec.limit)
                if y > t:
                    t, why, moved = y, spec.name, True
        if t - now > max_wait:
            raise _exceeded(why or self.first, t - now)
        for log in self.logs:
            if isinstance(log, Rolling):
                log.add(t, cost)
            else:
                log.commit(t, cost)
        if t > meta.last:
            meta.last, meta.last_why = t, why or meta.last_why
        meta.moves += 1
        return t

    def clock(self, now: float) -> float:
        """The key's time for the wall-clock reading ``now``: ``now + drift``, never going
        back by more than ``tolerance`` (see :meth:`stepped`)."""
        meta = self.meta
        now += meta.drift
        if now >= meta.seen:
            meta.seen = now
            return now
        return self.stepped(now)

    def stepped(self, now: float) -> float:
        """The key's time ``now`` is earlier than a reading already seen.

        Readings a little out of order are threads racing to the lock; beyond ``tolerance``
        the wall clock stepped back, and the key's timeline absorbs the step (``drift``)
        instead: admissions, the FIFO tail and the penalty box keep their places on it, so a
        step never blocks a key for its size, and waits stay durations. Calendar slots keep
        to the wall clock through ``drift``. Returns the key's time to use.
        """
        meta = self.meta
        if meta.seen - now <= self.tolerance:
            return now
        meta.drift += meta.seen - now
        for cal, _ in self.cals:
            cal.set_drift(meta.drift)
        return meta.seen

    def set_drift(self, drift: float, seen: float) -> None:
        """Restore the timeline of a key loaded from a store."""
        self.meta.drift, self.meta.seen = drift, seen
        for cal, _ in self.cals:
            cal.set_drift(drift)

    def release(self, at: float, cost: int) -> bool:
        """Give back a reservation of ``cost`` at ``at`` whose call was never sent.

        The FIFO tail goes back to the latest admission still held, so callers behind a
        cancelled wait do not queue behind its time. False if no such entry was held.
        """
        if not cost:
            return False
        found = False
        for log in self.logs:
            if isinstance(log, Rolling):
                found = log.remove(at, cost) or found
            else:
                for wid in log.ids(at):
                    if log.counts.get(wid, 0) >= cost:
                        log.counts[wid] -= cost
                        found = True
        meta = self.meta
        if found and meta.last <= at:
            held = [log.newest() for log in self.logs if isinstance(log, Rolling)]
            meta.last = max((t for t in held if t is not None), default=0.0)
        return found

    def _fit(self, now: float, t: float, why: str, cost: int) -> tuple[float, str]:
        pairs = self.pairs
        for log, _ in pairs:
            log.prune(now)
        while True:
            moved = False
            for log, spec in pairs:
                x = log.earliest(t, cost, spec.limit)
                if x > t:
                    t, why, moved = x, spec.name, True
            # rolling windows only move forward, so one pass settles them; slots may not
            if not moved or not self.calendar:
                return t, why

    def sync(self, sync: Sync, now: float) -> list[tuple[int, float, int]]:
        """Apply a server observation; return the cost added as ``(window, time, cost)``."""
        added: list[tuple[int, float, int]] = []
        now = self.clock(now)
        for log in self.logs:
            log.prune(now)
        for i, used, reset in sync.targets:
            log = self.logs[i]
            if isinstance(log, Rolling):
                # Lower what is left now to what the server says; the cost learned lives a full
                # window. A server's reset cannot end it sooner: on a rolling window it says when
                # the *oldest* request leaves, not when all of them do.
                deficit = used - log.used_until(now)
                if deficit > 0 and (reset is None or reset > 0):
                    log.add(now, deficit)
                    added.append((i, now, deficit))
            else:
                deficit = used - log.used(now)
                if deficit > 0:
                    wid = log.wid(now)
                    log.counts[wid] = used
                    added.append((i, now, deficit))
        for i, debit in sync.debits:
            log = self.logs[i]
            if debit > 0:
                if isinstance(log, Rolling):
                    log.add(now, debit)
                else:
                    wid = log.wid(now)
                    log.counts[wid] = log.counts.get(wid, 0) + debit
                added.append((i, now, debit))
            elif debit < 0 and not isinstance(log, Rolling):
                # every slot the call was counted in (one near a boundary counts in two)
                for t in dict.fromkeys((sync.debit_at, sync.debit_at + log.margin)):
                    wid = log.wid(t)
                    back = min(-debit, log.counts.get(wid, 0))
                    if back > 0 and (t == sync.debit_at or wid != log.wid(sync.debit_at)):
                        log.counts[wid] -= back
                        added.append((i, t, -back))
        if added:
            self.meta.moves += 1  # cost learned from the server may crowd reservations made ahead
        if sync.penalty is not None and now + sync.penalty > self.meta.blocked:
            self.meta.blocked, self.meta.blocked_why = now + sync.penalty, sync.penalty_why
            self.meta.moves += 1  # reservations made ahead must not leave into the penalty
        return added

    def snapshot(self, now: float) -> Snapshot:
        """Used cost and reset time of every window at ``now``, on the wall clock."""
        wall, now = now, self.clock(now)
        drift = self.meta.drift
        out: list[tuple[int, float | None]] = []
        for log in self.logs:
            log.prune(now)
            if isinstance(log, Rolling):
                oldest = log.oldest()
                resets = None if oldest is None else _after(oldest, log.length) - drift
                out.append((log.used(), resets))
            else:
                out.append((log.used(now), log.resets(now) - drift))
        return Snapshot(tuple(out), self.meta.blocked - drift, wall, self.meta.blocked_why)
