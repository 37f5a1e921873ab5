"""Log redaction: no record from coinguard, httpx or httpcore may carry a live key.

Filters on a logger do not apply to records of its child loggers, so the filter is attached to
every logger in the three families that exists now, and again whenever a client is created.
"""

from __future__ import annotations

import logging
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
_secrets: weakref.WeakSet[Secret] = weakref.WeakSet()
_forms: dict[str, str] = {}


def _spellings(secret: Secret) -> set[str]:
    raw = secret.reveal()
    return {raw, quote(raw, safe=""), quote_plus(raw, safe=""), quote(raw)}


def register(secret: Secret) -> None:
    """Remember a key so it is scrubbed from logs and error text while it is alive."""
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        for form in _spellings(secret):
            if len(form) >= 4:
                _forms[form] = secret.fingerprint
        weakref.finalize(secret, _forget, tuple(_spellings(secret)))


def _forget(forms: tuple[str, ...]) -> None:
    with _lock:
        for form in forms:
            _forms.pop(form, None)


def redact(text: str) -> str:
    """Replace every registered key (raw or URL-encoded) in ``text`` by its fingerprint."""
    if not _forms:
        return text
    for form, fp in sorted(_forms.items(), key=lambda kv: -len(kv[0])):
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
