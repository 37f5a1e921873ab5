"""Nonces drawn from the quota store: strictly increasing per key in every store, across
threads and processes, never below the floor (a millisecond clock)."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from coinguard._quota import SQLiteStore
from coinguard._quota._store import NonceStore

if TYPE_CHECKING:  # not imported at run time: spawned processes import this module
    from conftest import StoreFactory


def test_each_store_draws_increasing_nonces_above_the_floor(make_store: StoreFactory) -> None:
    """Memory, SQLite and Redis: above every nonce given out, at least the floor, per key."""
    store = make_store()
    assert isinstance(store, NonceStore)
    assert store.next_nonce("k", 1_000) == 1_000
    assert store.next_nonce("k", 10) == 1_001  # a floor below the last: one more
    assert store.next_nonce("k", 5_000) == 5_000  # the clock moved on: the floor wins
    assert store.next_nonce("other", 10) == 10  # keys do not share a counter
    again = make_store()  # a second handle sees the same counter
    assert isinstance(again, NonceStore)
    assert again.next_nonce("k", 0) == 5_001


def test_microsecond_sized_nonces_stay_exact(make_store: StoreFactory) -> None:
    """A microsecond-clock nonce (~1.8e15) increments by exactly one in every store."""
    store = make_store()
    assert isinstance(store, NonceStore)
    big = 1_800_000_000_000_000
    assert store.next_nonce("k", big) == big
    assert store.next_nonce("k", 0) == big + 1


def test_threads_of_one_store_never_draw_the_same_nonce(make_store: StoreFactory) -> None:
    """Eight threads drawing 50 nonces each through one store: 400 distinct values, each
    thread's own sequence strictly increasing."""
    store = make_store()
    assert isinstance(store, NonceStore)
    drawn: list[list[int]] = [[] for _ in range(8)]

    def draw(mine: list[int]) -> None:
        for _ in range(50):
            mine.append(store.next_nonce("shared", 1))

    threads = [threading.Thread(target=draw, args=(d,)) for d in drawn]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [n for d in drawn for n in d]
    assert len(set(every)) == 400
    assert all(a < b for d in drawn for a, b in itertools.pairwise(d))


def _process(path: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SQLiteStore(path)
    drawn: list[list[int]] = [[] for _ in range(8)]

    def draw(mine: list[int]) -> None:
        for _ in range(40):
            mine.append(store.next_nonce("kraken:nonce:fp:shared", 1_700_000_000_000))

    threads = [threading.Thread(target=draw, args=(d,)) for d in drawn]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    out.put(drawn)


def test_four_processes_of_eight_threads_share_one_sqlite_counter(tmp_path: Path) -> None:
    """4 processes x 8 threads on one SQLite file: 1,280 nonces, none drawn twice, every
    thread's sequence strictly increasing."""
    path = str(tmp_path / "quota.db")
    SQLiteStore(path).close()  # the schema exists before the processes race to open it
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(path, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    sequences = [seq for r in results for seq in r]
    every = [n for seq in sequences for n in seq]
    assert len(every) == 4 * 8 * 40
    assert len(set(every)) == len(every)
    assert all(a < b for seq in sequences for a, b in itertools.pairwise(seq))
    assert min(every) == 1_700_000_000_000
