"""Interrupted waits give their reservation back, in every store; a store failing before the
call is a QuotaStoreError; an AsyncClient never blocks its event loop on store I/O."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from quota_support import FakeClock

import coinguard
from coinguard import QuotaStoreError
from coinguard._quota import Quota, QuotaPolicy, QuotaStore, SQLiteStore, Window
from conftest import StoreFactory

BASE = "https://api.example.com/v2"
POLICY = QuotaPolicy([Window(2, 10.0)])


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "data": 1})


def _used(store: QuotaStore, clock: FakeClock) -> int:
    quota = Quota(
        POLICY,
        store=store,
        key_id=f"sandbox:{coinguard.fingerprint('read-key-1-abcdefgh')}",
        clock=clock,
        persist=None,
    )
    return quota.status().windows[0].used


def _kw(store: QuotaStore, clock: FakeClock) -> dict[str, Any]:
    return {
        "provider": "sandbox",
        "base_url": BASE,
        "read_key": "read-key-1-abcdefgh",
        "quota": POLICY,
        "quota_store": store,
        "clock": clock,
    }


def test_a_keyboard_interrupt_in_the_wait_gives_the_slot_back(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Ctrl-C while a sync call waits for quota: the window does not keep a phantom call."""
    store = make_store()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with coinguard.Client(
        http_client=httpx.Client(transport=httpx.MockTransport(_ok)),
        sleep=interrupted,
        **_kw(store, clock),
    ) as client:
        client.get("/price")
        client.get("/price")
        with pytest.raises(KeyboardInterrupt):
            client.get("/price")
    assert _used(store, clock) == 2


def test_a_cancelled_task_gives_the_slot_back(make_store: StoreFactory, clock: FakeClock) -> None:
    """A task cancelled while it waits for quota (wait_for timing out) leaves no phantom call."""
    store = make_store()

    async def main() -> None:
        sleeping = asyncio.Event()

        async def sleep(seconds: float) -> None:
            sleeping.set()
            await asyncio.Event().wait()  # until cancelled

        async with coinguard.AsyncClient(
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(_ok)),
            sleep=sleep,
            **_kw(store, clock),
        ) as client:
            await client.get("/price")
            await client.get("/price")
            task = asyncio.ensure_future(client.get("/price"))
            await sleeping.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert _used(store, clock) == 2


def test_a_released_slot_lets_the_next_caller_go_first(clock: FakeClock) -> None:
    """After a reservation ahead is given back, a new call does not queue behind its time."""
    q = Quota(
        QuotaPolicy([Window.per_second(1)]), store="memory", key_id="rel", clock=clock, persist=None
    )
    q.reserve("GET", "/x")
    ahead = q.reserve("GET", "/x")
    assert ahead.wait > 0.9
    q.release(ahead)
    clock.sleep(1.05)
    assert q.reserve("GET", "/x").wait == 0.0


def test_a_locked_sqlite_store_is_a_quota_store_error(tmp_path: Path, clock: FakeClock) -> None:
    """'database is locked' on reserve is a QuotaStoreError naming the store, not sqlite3's."""
    path = tmp_path / "q.db"
    store = SQLiteStore(path, timeout=0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        q = Quota(POLICY, store=store, key_id="locked", clock=clock, persist=None)
        with pytest.raises(QuotaStoreError, match="SQLiteStore") as info:
            q.reserve("GET", "/x")
        assert info.value.__cause__ is None  # named in the message, not chained
        assert "OperationalError: database is locked" in str(info.value)
        assert "q.db" in info.value.store
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()


def test_a_lost_redis_is_a_quota_store_error(clock: FakeClock) -> None:
    """A Redis that cannot be reached is a QuotaStoreError before anything is sent."""
    pytest.importorskip("redis")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = coinguard.RedisStore(f"redis://127.0.0.1:{port}/0", server_clock=False)
    q = Quota(POLICY, store=store, key_id="gone", clock=clock, persist=None)
    with pytest.raises(QuotaStoreError, match="RedisStore"):
        q.reserve("GET", "/x")
    store.close()


def test_a_failed_journal_write_leaves_no_phantom_reservation(
    tmp_path: Path, clock: FakeClock
) -> None:
    """When the month journal cannot be written, reserve fails and memory holds no reservation."""
    from coinguard._quota import _limiter

    path = tmp_path / "journal.db"
    policy = QuotaPolicy([Window.per_month(100)])
    q = Quota(policy, store=coinguard.MemoryStore(), key_id="j", clock=clock, persist=path)
    q.reserve("GET", "/x")
    _limiter._journal_store(path).close()  # the journal's file goes away under it
    try:
        with pytest.raises(QuotaStoreError, match="journal"):
            q.reserve("GET", "/x")
        assert q.status().windows[0].used == 1
    finally:
        _limiter._JOURNALS.pop(str(path), None)


def test_no_store_io_on_the_event_loop_under_sqlite_lock_contention(tmp_path: Path) -> None:
    """Another process holding the SQLite lock never stalls the AsyncClient's event loop."""
    path = tmp_path / "contended.db"
    SQLiteStore(path).close()  # create the schema
    stop, holding = threading.Event(), threading.Event()

    def contend() -> None:
        # Hold the write lock, let exactly one write through, take it again at once: each call
        # waits for its reserve, and its re-check then finds the lock taken again.
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        rows = "SELECT count(*) FROM quota_roll"
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        while not stop.is_set():
            time.sleep(0.3)
            seen = conn.execute(rows).fetchone()[0]
            conn.execute("COMMIT")
            while not stop.is_set() and conn.execute(rows).fetchone()[0] == seen:
                time.sleep(0.0005)  # not a busy loop: it would hold the GIL and stall the loop
            conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
        conn.close()

    async def main() -> float:
        worst = 0.0
        done = False

        async def ticker() -> None:
            nonlocal worst
            last = time.monotonic()
            while not done:
                await asyncio.sleep(0.005)
                now = time.monotonic()
                worst = max(worst, now - last)
                last = now

        tick = asyncio.ensure_future(ticker())
        async with coinguard.AsyncClient(
            provider="sandbox",
            base_url=BASE,
            read_key="read-key-1-abcdefgh",
            quota=QuotaPolicy([Window.per_second(1000)]),
            quota_store=f"sqlite:///{path}",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(_ok)),
        ) as client:
            for _ in range(4):
                await client.get("/price")
        done = True
        await tick
        return worst

    thread = threading.Thread(target=contend)
    thread.start()
    assert holding.wait(10)
    try:
        worst = asyncio.run(main())
    finally:
        stop.set()
        thread.join()
    assert worst < 0.2, f"the event loop stalled {worst:.3f}s"


def test_a_wait_for_the_sqlite_lock_is_not_taken_for_a_clock_step(tmp_path: Path) -> None:
    """A reserve that waited 0.7 s for the SQLite lock adds no drift to the key's timeline."""
    path = tmp_path / "slow.db"
    store = SQLiteStore(path)
    per_second = QuotaPolicy([Window.per_second(5)])  # a step is anything beyond 0.5 s
    quota = Quota(per_second, store=store, key_id="slow", persist=None)
    quota.reserve("GET", "/x")
    locked = threading.Event()

    def other_process() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(0.7)  # a slow decider elsewhere, which saw the clock last
        conn.execute("UPDATE quota_clock SET seen = ? WHERE key = 'slow'", (time.time(),))
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    assert locked.wait(10)
    quota.reserve("GET", "/x")
    thread.join()
    drift = sqlite3.connect(path).execute("SELECT drift FROM quota_clock").fetchone()[0]
    store.close()
    assert drift == 0.0


def test_a_released_reservation_leaves_the_month_journal_too(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A call given back before sending is not restored by the next process's month window."""
    path = tmp_path / "journal.db"
    policy = QuotaPolicy([Window.per_second(1), Window.per_month(100)])
    q = Quota(policy, store=coinguard.MemoryStore(), key_id="jr", clock=clock, persist=path)
    q.reserve("GET", "/x")
    waiting = q.reserve("GET", "/x")
    assert waiting.wait > 0
    q.release(waiting)
    q.close()  # a crash instead would leave the journal's lease counted: over, never under
    restarted = Quota(policy, store=coinguard.MemoryStore(), key_id="jr", clock=clock, persist=path)
    assert restarted.status().windows[1].used == 1  # only the month is journaled
