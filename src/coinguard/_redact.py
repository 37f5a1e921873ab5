"""Log redaction: no record from coinguard, httpx or httpcore may carry a live key.

Filters on a logger do not apply to records of its child loggers, so the filter is attached to
every logger in the three families that exists now, and again whenever a client is created.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from typing import Any
from urllib.parse import quote, quote_plus

from ._secret import Secret

__all__ = ["RedactingFilter", "install", "redact", "register"]

_FAMILIES = ("coinguard", "httpx", "httpcore")
_KNOWN = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_lock = threading.Lock()
_forms: dict[str, str] = {}
_live: dict[str, int] = {}  # fingerprint -> number of live Secret objects with that value
_seen: set[int] = set()  # ids of registered Secret objects
_ordered: tuple[tuple[str, str], ...] = ()  # _forms, longest first
_dead: list[tuple[int, str, tuple[str, ...]]] = []  # collected Secrets, not yet forgotten


def _spellings(raw: str) -> set[str]:
    """The ways a key can show up in text: raw, URL-encoded (either case), repr-escaped."""
    encoded = {quote(raw, safe=""), quote_plus(raw, safe=""), quote(raw)}
    lower = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), e) for e in encoded}
    return {raw, repr(raw)[1:-1], *encoded, *lower}


def register(secret: Secret) -> None:
    """Remember a key so it is scrubbed from logs and error text while any copy of it is alive.

    Counted per object: two equal keys held by two clients stay redacted until both are gone.
    """
    with _lock:
        _reap()
        if id(secret) in _seen:
            return
        _seen.add(id(secret))
        fp = secret.fingerprint
        _live[fp] = _live.get(fp, 0) + 1
        forms = tuple(f for f in _spellings(secret.reveal()) if len(f) >= 4)
        for form in forms:
            _forms[form] = fp
        _resort()
    weakref.finalize(secret, _forget, id(secret), fp, forms)


def _forget(ident: int, fp: str, forms: tuple[str, ...]) -> None:
    # Runs from the garbage collector, possibly while this thread holds _lock: never lock here,
    # only queue the removal (list.append is atomic) for the next locked section.
    _dead.append((ident, fp, forms))


def _reap() -> None:
    """Apply queued removals; call with _lock held."""
    while _dead:
        ident, fp, forms = _dead.pop()
        _seen.discard(ident)
        _live[fp] -= 1
        if _live[fp] == 0:
            del _live[fp]
            for form in forms:
                _forms.pop(form, None)
            _resort()


def _resort() -> None:
    """Longest spelling first, so a URL-encoded key is not half-replaced by its raw prefix.

    Done when the registry changes, not on every log record; call with _lock held.
    """
    global _ordered
    _ordered = tuple(sorted(_forms.items(), key=lambda kv: -len(kv[0])))


def redact(text: str) -> str:
    """Replace every registered key (raw or URL-encoded) in ``text`` by its fingerprint."""
    if not _forms:
        return text
    if _dead:
        with _lock:
            _reap()
    for form, fp in _ordered:
        if form in text:
            text = text.replace(form, f"<key {fp}>")
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside a decoded JSON value (error bodies may echo a key)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a record whose formatted message contains a key; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the caller's bug; leave it to logging's own handling
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Attach the filter to every existing logger of the coinguard, httpx and httpcore families."""
    names = [n for n in list(logging.Logger.manager.loggerDict) if n.split(".")[0] in _FAMILIES]
    for name in {*_FAMILIES, *_KNOWN, *names}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
