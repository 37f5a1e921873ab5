"""Redaction: no text from coinguard, httpx or httpcore, and no server-supplied string that
coinguard passes on, may carry a live key.

What counts as the key is broad on purpose: any run of :data:`MIN_RUN` or more of its
characters, in any letter case, raw, URL-encoded, repr-escaped or base64-encoded at any
alignment. A server that echoes half a key, or upper-cases it, or a log line that shows it
inside a base64 blob, is caught as surely as the plain value. Keys shorter than
:data:`MIN_KEY_LENGTH` are refused where they are loaded (``_keys``), so the shortest run that
is redacted is still far from a common word.

How: every ``GRAM``-character slice of every spelling of every live key is indexed (case
folded, by a hash: the index holds no key text and half the memory of the slices), once, with
the fingerprint of a key it belongs to. A text is first scanned (one
compiled pattern) for runs of :data:`MIN_RUN` or more characters that occur in some indexed
slice; most log lines have none or few, and only those runs are probed, at every
``STRIDE``-th position, which finds any run of a key of at least ``GRAM + STRIDE - 1``
characters. A probe that hits is grown ``STRIDE`` slices at a time, then to its exact end, and
replaced by ``<key fp:...>``. The cost is one dictionary probe per ``STRIDE`` characters of
the candidate runs plus a few per key found, whatever the number of live keys.

Filters on a logger do not apply to records of its child loggers, so the filter is attached to
every logger in the three families that exists now, and again whenever a client is created.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import weakref
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

from ._secret import Secret

__all__ = [
    "MIN_KEY_LENGTH",
    "MIN_RUN",
    "RedactingFilter",
    "install",
    "masked_url",
    "redact",
    "register",
    "register_param",
    "register_transient",
]

GRAM = 8
STRIDE = 4
#: The shortest run of a key's characters that is always redacted.
MIN_RUN = GRAM + STRIDE - 1
#: Keys shorter than this are refused when loaded (a provider profile may lower it).
MIN_KEY_LENGTH = 16
# slices are indexed by their hash cut to 60 bits (a 32-byte int, half a str): a collision
# can only redact too much, at odds of one in 2**60 / live slices per probe
_MASK = (1 << 60) - 1

_FAMILIES = ("coinguard", "httpx", "httpcore")
_KNOWN = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_lock = threading.Lock()
_index: dict[int, str] = {}  # hash of a folded slice -> fingerprint of a live value that has it
_more: dict[int, dict[str, int]] = {}  # slice hash -> its other owners and their counts, if shared
_chars: set[str] = set()  # every character of an indexed slice (only grows)
_runs: re.Pattern[str] | None = None  # runs of MIN_RUN or more of those characters
_live: dict[str, int] = {}  # fingerprint -> number of live Secret objects with that value
_seen: set[int] = set()  # ids of registered Secret objects
_dead: list[tuple[int, str, tuple[int, ...]]] = []  # collected Secrets, not yet forgotten
_transient: list[tuple[int, ...]] = []  # grams of recent one-use values, oldest first
TRANSIENT = 256  # how many one-use values (request signatures) stay redactable
_params: set[str] = set()  # query parameters that carry a signature: their value is never shown
_param_re: re.Pattern[str] | None = None


def _base64_runs(raw: bytes) -> set[str]:
    """The parts of ``raw``'s base64 that do not depend on its neighbours, at each alignment."""
    runs = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + raw).decode("ascii").rstrip("=")
            # the first characters mix in the padding bytes, the last ones the next bytes
            start = (pad * 8 + 5) // 6 if pad else 0
            runs.add(text[start : len(text) - 2])
    return runs


def spellings(raw: str) -> set[str]:
    """The ways a key can show up in text: raw, URL-encoded, repr-escaped, base64.

    >>> {"ab%2Fc%2Bd%3Defgh", "YWIvYytkPWVm"} <= spellings("ab/c+d=efgh")
    True
    """
    encoded = {quote(raw, safe=""), quote_plus(raw, safe=""), quote(raw)}
    forms = {raw, repr(raw)[1:-1], *encoded, *(e.lower() for e in encoded)}
    return forms | _base64_runs(raw.encode("utf-8"))


def _grams(forms: set[str]) -> tuple[frozenset[str], tuple[int, ...]]:
    """The characters of ``forms`` (case folded) and the hashes of their slices."""
    folded = {form.translate(_FOLD) for form in forms}
    slices = {form[i : i + GRAM] for form in folded for i in range(len(form) - GRAM + 1)}
    return frozenset("".join(folded)), tuple({hash(gram) & _MASK for gram in slices})


def _add(chars: frozenset[str], grams: tuple[int, ...], owner: str) -> None:
    """Index ``grams`` for ``owner``; call with _lock held."""
    global _runs
    if not chars <= _chars:
        # widen the pre-filter before the index, so no redact sees a slice it cannot reach
        _chars.update(chars)
        alphabet = "".join(re.escape(c) for c in sorted(_chars))
        _runs = re.compile(f"[{alphabet}]{{{MIN_RUN},}}")
    index, more = _index, _more
    for gram in grams:
        if gram in index:
            others = more.setdefault(gram, {})
            others[owner] = others.get(owner, 0) + 1
        else:
            index[gram] = owner


def _drop(grams: tuple[int, ...], owner: str) -> None:
    """Forget ``owner``'s share of ``grams``; call with _lock held."""
    index, more = _index, _more
    for gram in grams:
        others = more.get(gram)
        if others is None:
            del index[gram]
            continue
        gone = owner
        if index[gram] == owner:
            # hand the slice to another owner, one of whose shares moves into the index
            gone = index[gram] = next(iter(others))
        left = others[gone] - 1
        if left:
            others[gone] = left
        else:
            del others[gone]
        if not others:
            del more[gram]


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
        count = _live.get(fp, 0)
        _live[fp] = count + 1
        chars, grams = _grams(spellings(secret.reveal()))
        if count == 0:
            _add(chars, grams, fp)
    weakref.finalize(secret, _forget, id(secret), fp, grams)


def _forget(ident: int, fp: str, grams: tuple[int, ...]) -> None:
    # Runs from the garbage collector, possibly while this thread holds _lock: never lock here,
    # only queue the removal (list.append is atomic) for the next locked section.
    _dead.append((ident, fp, grams))


def _reap() -> None:
    """Apply queued removals; call with _lock held."""
    while _dead:
        ident, fp, grams = _dead.pop()
        _seen.discard(ident)
        _live[fp] -= 1
        if _live[fp]:
            continue
        del _live[fp]
        _drop(grams, fp)


def _spans(folded: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """``(start, end, fingerprint)`` of every run of key slices in ``folded[lo:hi]``.

    Probing every STRIDE-th position finds each run; a hit is grown STRIDE slices at a time
    (two slices STRIDE apart overlap, so the run stays contiguous), then the last few
    positions one by one, farthest first; probing goes on at the run's end."""
    index, spans, mask = _index, [], _MASK
    limit = hi - GRAM
    i = lo
    while i <= limit:
        fp = index.get(hash(folded[i : i + GRAM]) & mask)
        if fp is None:
            i += STRIDE
            continue
        start = i
        while (
            start - STRIDE >= lo
            and hash(folded[start - STRIDE : start - STRIDE + GRAM]) & mask in index
        ):
            start -= STRIDE
        for back in range(max(lo, start - STRIDE + 1), start):
            if hash(folded[back : back + GRAM]) & mask in index:
                start = back
                break
        end = i
        while (
            end + STRIDE <= limit
            and hash(folded[end + STRIDE : end + STRIDE + GRAM]) & mask in index
        ):
            end += STRIDE
        for ahead in range(min(limit, end + STRIDE - 1), end, -1):
            if hash(folded[ahead : ahead + GRAM]) & mask in index:
                end = ahead
                break
        if _more and hash(folded[i : i + GRAM]) & mask in _more:
            fp = _owner(folded, start, end) or fp
        spans.append((start, end + GRAM, fp))
        i = lo = end + GRAM
    return spans


def _owner(folded: str, start: int, end: int) -> str | None:
    """The fingerprint of a slice in ``folded[start:end + GRAM]`` that only one value has: a
    prefix many keys share (``sk_live_``) must not name the wrong one."""
    for k in range(start, end + 1):
        gram = hash(folded[k : k + GRAM]) & _MASK
        fp = _index.get(gram)
        if fp is not None and gram not in _more:
            return fp
    return None


def register_transient(value: str) -> None:
    """Redact a one-use value (a request's signature) until :data:`TRANSIENT` newer ones came.

    Cheaper than :func:`register`: only its raw and URL-encoded spellings (a signature is
    hex or base64 already), no weak reference; the oldest is forgotten when the ring is full.

    >>> register_transient("c8db56825ae71d6d79447849e617115f")
    >>> redact("echo c8db56825ae71d6d79447849")
    'echo <key signature>'
    """
    chars, grams = _grams({value, quote(value, safe="")})
    with _lock:
        _add(chars, grams, "signature")
        _transient.append(grams)
        if len(_transient) > TRANSIENT:
            _drop(_transient.pop(0), "signature")


def register_param(name: str) -> None:
    """Mask the value of query parameter ``name`` (e.g. a request ``signature``) in every text
    :func:`redact` sees: a signature is new on every request, so it cannot be indexed as a key.

    >>> register_param("signature")
    >>> redact("GET /api/v3/account?timestamp=1&signature=c8db56825ae7 200")
    'GET /api/v3/account?timestamp=1&signature=<redacted> 200'
    """
    global _param_re
    with _lock:
        if name in _params:
            return
        _params.add(name)
        names = "|".join(re.escape(n) for n in sorted(_params))
        # any spelling a URL or a repr shows: "signature=", "signature%3D", case folded
        # a value already shown as REDACTED (a span's url.full) is left as it is
        _param_re = re.compile(
            f"(?i)((?:{names})(?:=|%3D))(?!REDACTED(?:[&\\s\"'<>#]|$))[^&\\s\"'<>#]+"
        )


def _scrub_params(text: str) -> str:
    pattern = _param_re
    if pattern is None:
        return text
    return pattern.sub(r"\1<redacted>", text)


def redact(text: str) -> str:
    """Replace every run of a live key's characters in ``text`` by the key's fingerprint.

    coinguard applies it to every log record and every server-supplied string it passes on;
    use it on text of your own that may reach a person or a model (a tool result, a report).

    >>> key = Secret("Zq8-demo-key-3f9a1c77")
    >>> register(key)
    >>> redact("invalid key ZQ8-DEMO-KEY-3F9A, try again")
    'invalid key <key fp:710e0a3e63d3>, try again'
    """
    if _param_re is not None:
        text = _scrub_params(text)
    runs = _runs
    if not _index or runs is None or len(text) < MIN_RUN:
        return text
    if _dead:
        with _lock:
            _reap()
    # a pure-ASCII text folds with the fast lower(); elsewhere lower() may change its length
    folded = text.lower() if text.isascii() else text.translate(_FOLD)
    spans: list[tuple[int, int, str]] = []
    for run in runs.finditer(folded):
        spans += _spans(folded, run.start(), run.end())
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end, fp in spans:
        out += (text[last:start], f"<key {fp}>")
        last = end
    out.append(text[last:])
    return "".join(out)


_MAX_DEPTH = 64  # JSON nested deeper than this is not shown (a server can nest to exhaust us)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """Redact strings inside a decoded JSON value (error bodies may echo a key).

    A number whose digits are a key's (an all-digit key echoed as a JSON number) becomes the
    redacted text; structures nested deeper than 64 levels are cut.

    >>> redact_value({"a": [[["ok"]]]})
    {'a': [[['ok']]]}
    """
    if isinstance(value, str):
        return redact(value)
    if _depth >= _MAX_DEPTH and isinstance(value, list | dict):
        return "<nested too deep>"
    if isinstance(value, list):
        return [redact_value(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        clean = redact(text)
        return value if clean == text else clean
    return value


def masked_url(url: str) -> str:
    """A URL that may carry a password (a quota store's) as messages may show it: no query
    string or fragment (``?password=``), the password of the user part as ``***``.

    >>> masked_url("redis://:pw@127.0.0.1:6379/0?password=pw2")
    'redis://:***@127.0.0.1:6379/0'
    """
    head = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = head.partition("://")
    user, at, host = rest.rpartition("@")
    if not at:
        return head
    return f"{scheme}{sep}{user.partition(':')[0]}:***@{host}"


class RedactingFilter(logging.Filter):
    """Rewrites a record whose formatted message contains a key; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _index and _param_re is None:
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


def scrub_reason(extensions: MutableMapping[str, Any]) -> None:
    """Redact a response's reason phrase in place (httpx's ``response.extensions``).

    A server may echo the key there ("401 Bad key ..."), in any case, and httpx shows it in
    ``repr(response)``: in every traceback's captured locals, in a debugger, in an error
    tracker. coinguard runs this on every response as it arrives.
    """
    reason = extensions.get("reason_phrase")
    if not isinstance(reason, bytes) or len(reason) < MIN_RUN:
        return
    # as httpx decodes it for repr(response): bytes it drops must not split the key for us
    text = reason.decode("ascii", errors="ignore")
    clean = redact(text)
    if clean != text:
        extensions["reason_phrase"] = clean.encode("ascii", errors="replace")
