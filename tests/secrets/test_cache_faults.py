"""Faults in the secret cache: failed first fetches are single-flight, stale keys have a bound."""

from __future__ import annotations

import threading

import pytest
from test_cache import CountingBackend, FakeClock, make, wait_until_inside

from coinguard._exceptions import ConfigurationError
from coinguard._secrets import SecretBackendError


def test_failed_first_fetch_is_shared_by_every_waiter() -> None:
    """Eight threads loading at once while the backend fails make one fetch, all get its error."""
    backend, clock = CountingBackend(), FakeClock()
    backend.fail = "unreachable"
    backend.gate = threading.Event()
    attempts = 0
    real_fetch = backend.fetch

    def counting_fetch() -> str:
        nonlocal attempts
        attempts += 1
        return real_fetch()

    backend.fetch = counting_fetch  # type: ignore[method-assign]
    ref = make(backend, clock)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            ref.load()
        except SecretBackendError as exc:
            errors.append(exc)

    first = threading.Thread(target=load)
    first.start()
    assert backend.entered.wait(10)
    others = [threading.Thread(target=load) for _ in range(7)]
    for thread in others:
        thread.start()
    wait_until_inside(others, "load")
    backend.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert attempts == 1
    assert len(errors) == 8
    assert all(e.reason == "unreachable" for e in errors)  # type: ignore[attr-defined]


def test_a_failed_first_fetch_is_cached_briefly() -> None:
    """Right after a failed first fetch the next load fails at once; later it asks again."""
    backend, clock = CountingBackend(), FakeClock()
    backend.fail = "unreachable"
    attempts = 0
    real_fetch = backend.fetch

    def counting_fetch() -> str:
        nonlocal attempts
        attempts += 1
        return real_fetch()

    backend.fetch = counting_fetch  # type: ignore[method-assign]
    ref = make(backend, clock, negative_ttl=5.0)
    with pytest.raises(SecretBackendError):
        ref.load()
    backend.fail = None
    with pytest.raises(SecretBackendError, match="failed"):
        ref.load()
    assert attempts == 1
    clock.advance(5.1)
    assert ref.load().reveal() == "CANARY-first"
    assert attempts == 2


def test_the_last_good_key_has_a_bound() -> None:
    """After max_stale seconds of failed re-fetches the old key is no longer served."""
    backend, clock = CountingBackend(), FakeClock()
    ref = make(backend, clock, max_stale=120.0)
    first = ref.load()
    backend.fail = "unreachable"
    clock.advance(61)
    assert ref.load() == first  # within the bound: the last good key
    clock.advance(120)
    with pytest.raises(SecretBackendError, match="last good key") as info:
        ref.load()
    assert info.value.reason == "unreachable"


def test_max_stale_must_be_positive() -> None:
    """A negative bound is refused."""
    with pytest.raises(ConfigurationError, match="max_stale"):
        make(CountingBackend(), FakeClock(), max_stale=-1.0)
