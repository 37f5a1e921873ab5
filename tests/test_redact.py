"""The redaction registry: safe under garbage collection, counted per object."""

from __future__ import annotations

import base64
import gc
import threading
from urllib.parse import quote

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


# -- exactness: every run of MIN_RUN characters of every spelling, wherever it sits ----------

_KEYS = (
    "sk_live_" + "Q7xv-Lm2_pR9tZk4Wc8yB1nH5dJ3fG6s",  # URL-safe token: letters, digits, - and _
    "ab/c+d=ef!\"#$%&'()*,.:;<>?@[\\]^`{|}~Zz",  # every punctuation a visible-ASCII key may hold
    "4031998877665544332211",  # all digits
    "~~~???~~~???~~~???~~",  # base64 with a + or / in every four characters
)
_RUN = 11  # the documented promise, not the module's constant: a change there must fail here
_CONTEXTS = ("", "x", "ab ", "key=", "QQQQ", "zz9-_", "\n\t", "café ")


def _windows(text: str) -> set[str]:
    folded = text.lower()
    return {folded[i : i + _RUN] for i in range(len(folded) - _RUN + 1)}


def _left(text: str, forms: set[str]) -> set[str]:
    """The runs of MIN_RUN characters of ``forms`` that are still in ``text``."""
    return _windows(text) & set().union(*(_windows(form) for form in forms))


def _base64_key_part(prefix: bytes, raw: bytes, suffix: bytes, urlsafe: bool) -> str:
    """The characters of the base64 of ``prefix + raw + suffix`` that depend on ``raw`` only."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(prefix + raw + suffix).decode("ascii")
    first = -(-8 * len(prefix) // 6)
    last = 8 * (len(prefix) + len(raw)) // 6
    return text[first:last]


def test_every_run_of_every_spelling_is_redacted_at_every_offset() -> None:
    """Any MIN_RUN or longer slice of any spelling, in either case, at any position of the text
    and after any neighbour, leaves no run of the key behind."""
    held = [Secret(k, source="test") for k in _KEYS]
    for key in held:
        _redact.register(key)
    for key in held:
        forms = _redact.spellings(key.reveal())
        for form in forms:
            for size in (_RUN, _RUN + 1, len(form)):
                for start in range(max(1, len(form) - size + 1)):
                    piece = form[start : start + size]
                    for case in (piece, piece.upper(), piece.lower()):
                        for before in _CONTEXTS:
                            text = f"{before}{case} tail"
                            out = _redact.redact(text)
                            assert not _left(out, forms), (key.fingerprint, before, start, size)


def test_base64_of_a_key_among_other_bytes_is_redacted_at_any_alignment() -> None:
    """A key inside a base64 blob (basic auth, a JWT, a dump) is caught whatever bytes come
    before and after it, in the standard and the URL-safe alphabet, padded or not."""
    held = [Secret(k, source="test") for k in _KEYS]
    for key in held:
        _redact.register(key)
    for key in held:
        raw = key.reveal().encode()
        for pad in range(6):
            for tail in range(4):
                for urlsafe in (False, True):
                    prefix, suffix = b"u:\xff\x00\x10"[:pad], b"\xfe\x01\x7f"[:tail]
                    part = _base64_key_part(prefix, raw, suffix, urlsafe)
                    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
                    blob = encode(prefix + raw + suffix).decode("ascii")
                    for text in (f"Basic {blob}", blob.rstrip("="), f"x{blob}y"):
                        assert not _left(_redact.redact(text), {part}), (pad, tail, urlsafe)


def test_a_key_inside_a_long_run_of_other_key_like_characters_is_redacted() -> None:
    """A key glued to other letters and digits on both sides (no separator to start from)."""
    key = Secret("sk_live_gluedKEY0123456789abcdef", source="test")
    _redact.register(key)
    for left in range(9):
        text = "A" * left + "zz" + key.reveal()[3:17] + "0Z" * 7
        assert key.reveal()[3:17].lower() not in _redact.redact(text).lower(), left


def test_keys_sharing_a_prefix_stay_redacted_when_one_is_collected() -> None:
    """Slices two keys share are counted: forgetting one key keeps the other's whole run."""
    first = Secret("sk_live_sharedprefix_0000aaaa1111", source="test")
    second = Secret("sk_live_sharedprefix_2222bbbb3333", source="test")
    _redact.register(first)
    _redact.register(second)
    del first
    gc.collect()
    out = _redact.redact("echo sk_live_sharedprefix_2222bbbb3333 and sk_live_sharedprefix_")
    assert out == f"echo <key {second.fingerprint}> and <key {second.fingerprint}>"


def test_a_signature_is_redacted_at_every_offset() -> None:
    """A one-use value (hex or base64 signature): every run of MIN_RUN of it, either case."""
    for value in ("c8db56825ae71d6d79447849e617115f0bc4", "q1+Ab/9zXy0c8db5_6825ae7-1d6d=="):
        _redact.register_transient(value)
        for start in range(len(value) - _RUN + 1):
            piece = value[start : start + _RUN]
            for before in _CONTEXTS:
                out = _redact.redact(f"{before}{piece.upper()}!")
                assert not _left(out, {value, quote(value, safe="")}), (value, start, before)


def test_a_key_sharing_a_prefix_with_others_is_named_by_its_own_fingerprint() -> None:
    """Whichever key was registered first, a line with a key names that key, not another one
    that shares its first slices."""
    held = [Secret(f"sk_live_commonstart_{n}x9y8z7w6v5", source="test") for n in range(3)]
    for key in held:
        _redact.register(key)
    for key in held:
        assert _redact.redact(f"k={key.reveal()}") == f"k=<key {key.fingerprint}>"
