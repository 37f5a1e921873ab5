"""The redaction registry: safe under garbage collection, counted per object."""

from __future__ import annotations

import gc
import threading

from coinguard import Secret, _redact


def test_collecting_a_key_inside_a_locked_section_does_not_deadlock() -> None:
    """A finalizer that runs while the registry lock is held must not try to take it again."""
    victim = Secret("gc-victim-key-123", source="test")
    _redact.register(victim)
    done = threading.Event()

    def collect_under_lock() -> None:
        nonlocal victim
        with _redact._lock:
            del victim
            gc.collect()
        done.set()

    worker = threading.Thread(target=collect_under_lock, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert done.is_set(), "finalizer blocked on the registry lock"
    survivor = Secret("gc-survivor-key-456", source="test")
    _redact.register(survivor)
    assert _redact.redact("x gc-survivor-key-456 y") == f"x <key {survivor.fingerprint}> y"


def test_collected_key_is_forgotten_eventually() -> None:
    """Once every copy of a key is gone, its spellings leave the registry."""
    s = Secret("forgotten-key-789", source="test")
    _redact.register(s)
    assert "forgotten-key-789" not in _redact.redact("forgotten-key-789")
    del s
    gc.collect()
    assert _redact.redact("forgotten-key-789") == "forgotten-key-789"


def test_a_registered_parameter_already_shown_as_redacted_stays_so() -> None:
    """Spans show a signature as REDACTED; the parameter scrub must not rewrite that, and
    still masks a real value (also one that starts with the word)."""
    from coinguard._redact import redact, register_param

    register_param("signature")
    assert redact("/x?a=1&signature=REDACTED") == "/x?a=1&signature=REDACTED"
    assert redact("/x?signature=REDACTEDabc123&b=2") == "/x?signature=<redacted>&b=2"
    assert redact("/x?signature=c8db56825ae7") == "/x?signature=<redacted>"
