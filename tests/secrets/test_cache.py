"""The caching layer: TTL, refresh, single-flight, stale serving, and the key-age policy."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from coinguard._exceptions import ConfigurationError
from coinguard._keys import KeyMetadata, KeySource
from coinguard._secrets import KeyAgeWarning, SecretBackendError, SecretRef, check_age

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingBackend:
    """A backend that counts fetches, can fail on demand, and can block until released."""

    reference = "fake://tm/read"
    local = False

    def __init__(self, values: list[str] | None = None) -> None:
        self.values = values or ["CANARY-first", "CANARY-second", "CANARY-third"]
        self.fetches = 0
        self.fail: str | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.meta: KeyMetadata | None = None
        self._lock = threading.Lock()

    def fetch(self) -> str:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        with self._lock:
            if self.fail:
                raise SecretBackendError(self.reference, self.fail)  # type: ignore[arg-type]
            value = self.values[min(self.fetches, len(self.values) - 1)]
            self.fetches += 1
            return value

    def metadata(self) -> KeyMetadata | None:
        return self.meta


def wait_until_inside(threads: list[threading.Thread], function: str) -> None:
    """Block until every thread is executing `function` (here: waiting on the ref's lock)."""
    idents = {t.ident for t in threads}
    for _ in range(100_000):
        frames = sys._current_frames()
        if all(i in frames and frames[i].f_code.co_name == function for i in idents):
            return
        time.sleep(0)  # yield the GIL; not a timed wait
    raise AssertionError(f"threads never reached {function}")


def make(backend: CountingBackend, clock: FakeClock, **kwargs: object) -> SecretRef:
    return SecretRef(backend, ttl=60, clock=clock, now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def test_is_a_key_source() -> None:
    """A SecretRef satisfies the KeySource protocol the client reads keys through."""
    ref = make(CountingBackend(), FakeClock())
    assert isinstance(ref, KeySource)
    assert ref.reloadable
    assert not ref.local
    assert ref.description == "secret fake://tm/read"


def test_lazy_until_first_load() -> None:
    """Constructing a reference fetches nothing."""
    backend = CountingBackend()
    make(backend, FakeClock())
    assert backend.fetches == 0


def test_cached_for_ttl_then_fetched_again() -> None:
    """The value is served from cache until ttl passes on the injected clock."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    assert ref.load().reveal() == "CANARY-first"
    clock.advance(59.9)
    assert ref.load().reveal() == "CANARY-first"
    assert backend.fetches == 1
    clock.advance(0.2)
    assert ref.load().reveal() == "CANARY-second"
    assert backend.fetches == 2


def test_refresh_bypasses_cache() -> None:
    """refresh() fetches even when the cached value is fresh."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    ref.load()
    assert ref.refresh().reveal() == "CANARY-second"
    assert ref.load().reveal() == "CANARY-second"
    assert backend.fetches == 2


def test_failed_refetch_serves_last_good_key_and_logs(
    caplog: pytest.LogCaptureFixture, no_leak: Callable[..., None]
) -> None:
    """A failing re-fetch after ttl keeps the old key and logs the reference and failure kind."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    first = ref.load()
    backend.fail = "unreachable"
    clock.advance(61)
    assert ref.load() == first
    record = next(r for r in caplog.records if r.name == "coinguard.keys")
    assert record.levelno == logging.WARNING
    assert "fake://tm/read" in record.getMessage()
    assert "unreachable" in record.getMessage()
    no_leak("CANARY-first", ref, first)


def test_failed_refetch_backs_off_before_asking_again() -> None:
    """After a failed re-fetch the backend is not asked again on every load."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    ref.load()
    backend.fail = "unreachable"
    clock.advance(61)
    ref.load()
    backend.fail = None
    ref.load()
    assert backend.fetches == 1
    clock.advance(31)
    assert ref.load().reveal() == "CANARY-second"


def test_refresh_raises_when_fetch_fails_and_forgets_rejected_key() -> None:
    """refresh() after a 401 must fetch; if that fails it raises and the old key is not served."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    ref.load()
    backend.fail = "access_denied"
    with pytest.raises(SecretBackendError) as info:
        ref.refresh()
    assert info.value.reason == "access_denied"
    with pytest.raises(SecretBackendError):
        ref.load()


def test_first_load_failure_raises() -> None:
    """With no last good key, a failed fetch is raised."""
    backend = CountingBackend()
    backend.fail = "not_found"
    with pytest.raises(SecretBackendError, match=r"fake://tm/read: not found"):
        make(backend, FakeClock()).load()


@pytest.mark.parametrize("raw", ["", "   \n", "CANARY with space"])
def test_invalid_value_is_reported_without_the_value(
    raw: str, no_leak: Callable[..., None]
) -> None:
    """An empty or malformed value is an 'invalid' error that does not echo the value."""
    backend = CountingBackend([raw])
    with pytest.raises(SecretBackendError) as info:
        make(backend, FakeClock()).load()
    assert info.value.reason == "invalid"
    if raw.strip():
        no_leak(raw, info.value)


def test_trailing_newline_is_stripped() -> None:
    """Values read from files or CLIs lose their trailing newline."""
    assert make(CountingBackend(["CANARY-nl\n"]), FakeClock()).load().reveal() == "CANARY-nl"


def test_concurrent_refreshes_collapse_into_one_fetch() -> None:
    """Many threads calling refresh() at once after a 401 cause a single fetch."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    ref.load()
    backend.gate, backend.entered = threading.Event(), threading.Event()
    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(ref.refresh().reveal()))
    first.start()
    assert backend.entered.wait(10)  # the first refresh is inside fetch, holding the lock
    others = [
        threading.Thread(target=lambda: results.append(ref.refresh().reveal())) for _ in range(8)
    ]
    for thread in others:
        thread.start()
    wait_until_inside(others, "refresh")
    backend.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert backend.fetches == 2
    assert results == ["CANARY-second"] * 9


def test_concurrent_first_loads_fetch_once() -> None:
    """Threads racing on the first load share one fetch."""
    backend = CountingBackend()
    backend.gate = threading.Event()
    ref = make(backend, FakeClock())
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(ref.load().reveal())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    assert backend.entered.wait(10)
    backend.gate.set()
    for thread in threads:
        thread.join(10)
    assert backend.fetches == 1
    assert results == ["CANARY-first"] * 8


def test_load_during_refetch_serves_cached_key_without_waiting() -> None:
    """While one thread re-fetches an expired key, other loads get the last key at once."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock)
    ref.load()
    clock.advance(61)
    backend.gate, backend.entered = threading.Event(), threading.Event()
    worker = threading.Thread(target=ref.load)
    worker.start()
    assert backend.entered.wait(10)
    assert ref.load().reveal() == "CANARY-first"
    backend.gate.set()
    worker.join(10)
    assert ref.load().reveal() == "CANARY-second"


def test_negative_ttl_is_refused() -> None:
    """A negative ttl is a configuration error."""
    with pytest.raises(ConfigurationError, match="ttl"):
        SecretRef(CountingBackend(), ttl=-1)


# --- key-age policy --------------------------------------------------------------------------


def test_check_age_fresh_key_has_no_findings() -> None:
    """A recently rotated key with a distant expiry passes."""
    meta = KeyMetadata(rotated_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=60))
    assert check_age(meta, now=NOW) == []
    assert check_age(None, now=NOW) == []


def test_check_age_reports_old_expiring_and_expired() -> None:
    """Over-age keys, keys expiring within the window and expired keys are each reported."""
    old = KeyMetadata(created_at=NOW - timedelta(days=120))
    assert "over the maximum age of 90 days" in check_age(old, now=NOW)[0]
    soon = KeyMetadata(expires_at=NOW + timedelta(days=2))
    assert "expires at" in check_age(soon, now=NOW)[0]
    gone = KeyMetadata(expires_at=NOW - timedelta(hours=1))
    assert "expired at" in check_age(gone, now=NOW)[0]


def test_check_age_prefers_rotation_and_accepts_naive_times() -> None:
    """Age counts from the last rotation; naive datetimes are read as UTC."""
    meta = KeyMetadata(
        created_at=datetime(2020, 1, 1), rotated_at=(NOW - timedelta(days=5)).replace(tzinfo=None)
    )
    assert check_age(meta, now=NOW) == []
    assert check_age(meta, max_age=timedelta(days=1), now=NOW)


def test_old_key_warns_logs_and_calls_hook(caplog: pytest.LogCaptureFixture) -> None:
    """Loading a key over the age limit emits KeyAgeWarning, a log record and the hook call."""
    backend = CountingBackend()
    backend.meta = KeyMetadata(rotated_at=NOW - timedelta(days=200), version="7")
    seen: list[str] = []
    ref = make(backend, FakeClock(), metadata_hook=seen.append)
    with pytest.warns(KeyAgeWarning, match=r"fake://tm/read: key is 200 days old"):
        ref.load()
    assert len(seen) == 1
    assert "fake://tm/read" in seen[0]
    assert any(r.name == "coinguard.keys" and "200 days" in r.getMessage() for r in caplog.records)
    ref.load()  # cached: no second warning (pytest -W error would raise here)


def test_age_is_checked_again_only_when_the_key_changes() -> None:
    """A refresh returning the same value does not warn again; a new value is checked."""
    backend = CountingBackend(["CANARY-a", "CANARY-a", "CANARY-b"])
    backend.meta = KeyMetadata(expires_at=NOW + timedelta(days=1))
    ref = make(backend, FakeClock())
    with pytest.warns(KeyAgeWarning, match="expires at"):
        ref.load()
    ref.refresh()
    with pytest.warns(KeyAgeWarning):
        ref.refresh()


def test_custom_age_policy() -> None:
    """max_age and expiry_warning are per-reference settings."""
    lenient, strict = CountingBackend(), CountingBackend()
    lenient.meta = strict.meta = KeyMetadata(created_at=NOW - timedelta(days=40))
    make(lenient, FakeClock()).load()
    with pytest.warns(KeyAgeWarning, match="maximum age of 30 days"):
        make(strict, FakeClock(), max_age=timedelta(days=30)).load()


def test_metadata_failure_does_not_fail_the_load(caplog: pytest.LogCaptureFixture) -> None:
    """A backend that cannot report metadata still serves the key."""

    class NoMeta(CountingBackend):
        def metadata(self) -> KeyMetadata | None:
            raise SecretBackendError(self.reference, "access_denied")

    caplog.set_level(logging.INFO, logger="coinguard.keys")
    ref = make(NoMeta(), FakeClock())
    assert ref.load().reveal() == "CANARY-first"
    assert "access_denied" in caplog.text
