"""Where keys come from: key sources, validation, and the per-scope slot the client reads from.

Resolution order for one scope: explicit argument > callable > ``Settings``
(``COINGUARD_<SCOPE>_KEY``, ``COINGUARD_<SCOPE>_KEY_FILE``, ``COINGUARD_<SCOPE>_KEY_REF``) > the
provider's conventional variable.
A source is only asked for its value when a request needs that scope; local sources (argument,
variable, file) are read at construction so that bad keys fail early.

A :class:`KeySource` is the seam for secret managers: anything with ``description``,
``reloadable``, ``load()`` and ``refresh()`` can feed a scope.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from ._exceptions import (
    ArgumentTypeError,
    CoinguardError,
    ConfigurationError,
    MissingKeyError,
    seal,
)
from ._redact import MIN_KEY_LENGTH
from ._secret import Secret

__all__ = [
    "CallableSource",
    "EnvSource",
    "FileSource",
    "KeyMetadata",
    "KeySlot",
    "KeySource",
    "Unusable",
    "ValueSource",
    "as_secret",
    "checked",
    "is_pem",
    "resolve_source",
    "validate_key",
]


@dataclass(frozen=True)
class KeyMetadata:
    """What a backend knows about a key, used for age and expiry warnings."""

    created_at: datetime | None = None
    rotated_at: datetime | None = None
    expires_at: datetime | None = None
    version: str | None = None


@runtime_checkable
class KeySource(Protocol):
    """Something that can produce a key value, and say where it comes from without revealing it."""

    @property
    def description(self) -> str:
        """Where the key comes from, e.g. ``env var COINGUARD_READ_KEY``. Never the value."""
        ...

    @property
    def reloadable(self) -> bool:
        """True when :meth:`refresh` may return a different key (rotation)."""
        ...

    @property
    def local(self) -> bool:
        """True when loading is cheap and offline (argument, variable, file): loaded eagerly."""
        ...

    # Optional: a source with ``live = True`` caches by itself and is asked on every request.

    def load(self) -> Secret:
        """Return the key, fetching it if needed. Raises :class:`MissingKeyError` if absent."""
        ...

    def refresh(self) -> Secret:
        """Fetch the key again, bypassing any cache (called after a 401)."""
        ...


def _has_bad_char(value: str) -> bool:
    # Keys travel in headers and query strings: visible ASCII only. Anything else is a paste
    # error (a line break, a smart quote) that would otherwise fail deep inside httpx or h11
    # with the key in the exception.
    return not all("!" <= ch <= "~" for ch in value)


def is_pem(value: str) -> bool:
    """True for a PEM block (a private key for signing), whose lines are part of the value."""
    return value.startswith("-----BEGIN ") and value.endswith("-----")


def validate_key(raw: str, source: str) -> Secret:
    """Strip surrounding whitespace and reject empty or malformed values, naming only the source.

    A PEM block keeps its line breaks: it is a signing secret, never sent (a key slot refuses
    one, see :func:`checked`).

    >>> validate_key("  abc123\\n", "file /run/secrets/tm").reveal()
    'abc123'
    """
    value = raw.strip()
    if not value:
        raise MissingKeyError(f"the key from {source} is empty")
    if is_pem(value):
        return Secret(value, source=source)
    if _has_bad_char(value):
        raise ConfigurationError(
            f"the key from {source} contains whitespace, control or non-ASCII characters; "
            "check for a pasted line break or quote"
        )
    return Secret(value, source=source)


def checked(secret: Secret, min_length: int, *, pem: bool = False) -> Secret:
    """``secret`` vetted like any key: whatever a source returns, it never reaches the wire
    malformed or too short to be told apart from ordinary text. A PEM block only where
    ``pem`` (a signing secret's slot)."""
    if not isinstance(secret, Secret):
        raise ConfigurationError(
            f"a key source returned {type(secret).__name__}, not a coinguard.Secret"
        )
    raw = secret.reveal()
    if not isinstance(raw, str):
        raise ConfigurationError(f"the key from {secret.source} is not text")
    if raw != raw.strip() or (_has_bad_char(raw) and not is_pem(raw)):
        secret = validate_key(raw, secret.source)
    if not pem and is_pem(secret.reveal()):
        raise ConfigurationError(
            f"the key from {secret.source} is a PEM block: that is a signing secret, not an API "
            "key (pass it as read_secret= or trade_secret=)"
        )
    if len(secret.reveal()) < min_length:
        raise ConfigurationError(
            f"the key from {secret.source} is {len(secret.reveal())} characters long; keys "
            f"shorter than {min_length} are refused (a real provider key is longer, and a short "
            "one cannot be told apart from ordinary text in logs). A provider that really "
            "issues shorter keys sets Provider(min_key_length=...)"
        )
    return secret


class ValueSource:
    """A key given directly (str, pydantic ``SecretStr`` or :class:`Secret`).

    Held as a :class:`Secret` from the start and vetted when loaded, inside the key slot, so
    no frame of a failed check holds the raw value.
    """

    reloadable = False
    local = True

    def __init__(self, value: str | SecretStr | Secret, description: str = "argument") -> None:
        self.description = description
        self._secret = as_secret(value, description)

    def load(self) -> Secret:
        return validate_key(self._secret.reveal(), self.description)

    refresh = load

    def __repr__(self) -> str:
        return f"ValueSource({self._secret.fingerprint})"


class Unusable:
    """Stands in for a key argument of a type no source accepts (bytes, a list, ...), so
    that no frame between the constructor and the error holds the value itself."""

    def __init__(self, value: object) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"Unusable({self.kind})"


def as_secret(value: object, description: str) -> Secret:
    """Wrap a key value as soon as it is received, so no later frame holds it raw."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{description} must be a str, SecretStr or coinguard.Secret, "
            f"not {type(value).__name__}"
        )
    return Secret(value, source=description)


class CallableSource:
    """A key returned by a function; called again on :meth:`refresh` (e.g. after rotation)."""

    reloadable = True
    local = False

    def __init__(self, func: Callable[[], str | SecretStr | Secret], description: str) -> None:
        self._func = func
        self.description = description

    def load(self) -> Secret:
        try:
            raw = self._func()
        except Exception as exc:
            raise ConfigurationError(
                f"the key callable ({self.description}) raised {type(exc).__name__}"
            ) from None
        if raw is None:
            raise MissingKeyError(f"the key callable ({self.description}) returned None")
        if not isinstance(raw, str | SecretStr | Secret):
            raise ConfigurationError(
                f"the key callable ({self.description}) returned {type(raw).__name__};"
                " it must return a str, SecretStr or Secret"
            )
        return ValueSource(raw, self.description).load()

    refresh = load

    def __repr__(self) -> str:
        return f"CallableSource({self.description})"


class EnvSource:
    """A key in an environment variable, read when loaded."""

    reloadable = True
    local = True

    def __init__(self, var: str) -> None:
        self.var = var
        self.description = f"env var {var}"

    def load(self) -> Secret:
        raw = os.environ.get(self.var)
        if raw is None:
            raise MissingKeyError(f"{self.description} is not set")
        return validate_key(raw, self.description)

    refresh = load

    def __repr__(self) -> str:
        return f"EnvSource({self.var})"


class FileSource:
    """A key in a file (Docker/Kubernetes secrets); trailing newlines are stripped."""

    reloadable = True
    local = True

    def __init__(self, path: str | Path, via: str | None = None) -> None:
        self.path = Path(path)
        self.description = f"file {self.path}" + (f" (from {via})" if via else "")

    def load(self) -> Secret:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MissingKeyError(f"{self.description} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{self.description} could not be read ({type(exc).__name__})"
            ) from None
        return validate_key(raw, self.description)

    refresh = load

    def __repr__(self) -> str:
        return f"FileSource({self.path})"


class KeySlot:
    """The key for one scope: loaded once, reloaded on demand, safe to share between threads.

    ``peer`` is the other scope's slot; a key equal to the peer's is refused, because separate
    read and trade keys are the point of having two.
    """

    def __init__(
        self,
        scope_name: str,
        source: KeySource,
        *,
        min_length: int = MIN_KEY_LENGTH,
        kind: str = "key",
    ) -> None:
        self.scope_name = scope_name
        self.kind = kind
        self.source = source
        self.min_length = min_length
        self.peer: KeySlot | None = None
        self._secret: Secret | None = None
        self._lock = threading.Lock()
        self._generation = 0
        self._live = bool(getattr(source, "live", False))

    @property
    def loaded(self) -> Secret | None:
        """The cached key, or None if it was never loaded."""
        return self._secret

    @property
    def generation(self) -> int:
        """Increases each time the key is (re)loaded; lets concurrent 401s reload only once."""
        return self._generation

    def get(self) -> Secret:
        """Return the key, loading it on first use.

        A *live* source (a secret reference with its own TTL cache) is asked on every call, so a
        rotated key is picked up when its TTL expires, not only after a 401.
        """
        secret = self._secret
        if secret is not None and not self._live:
            return secret
        return self._contained(lambda: self._get(secret))

    def _contained(self, load: Callable[[], Secret]) -> Secret:
        """Run ``load``; whatever fails is raised as a coinguard error without the frames below
        (they handled the raw value, and a traceback printer shows their locals)."""
        try:
            return load()
        except CoinguardError as exc:
            error = exc
        except Exception as exc:  # a key source of the caller's: named, never shown
            error = ConfigurationError(
                f"the key source {self.source.description} failed ({type(exc).__name__})"
            )
        raise seal(error).with_traceback(None)

    def _get(self, secret: Secret | None) -> Secret:
        if secret is None:
            with self._lock:
                if self._secret is None:
                    self._store(self.source.load())
                assert self._secret is not None
                return self._secret
        fresh = self.source.load()
        if fresh != secret:
            with self._lock:
                self._store(fresh)
            assert self._secret is not None
            return self._secret
        return secret

    def peek(self) -> Secret | None:
        """The key if it can be had without I/O, else None (then call :meth:`get` off-loop)."""
        secret = self._secret
        if secret is None or not self._live:
            return secret
        fresh = getattr(self.source, "peek", None)
        try:
            cached = fresh() if fresh is not None else None
        except Exception:  # a failing peek only means "ask get()", which reports it properly
            return None
        return cached if cached == secret else None

    def reload(self, seen_generation: int) -> Secret:
        """Fetch the key again, unless another caller already did since ``seen_generation``."""
        return self._contained(lambda: self._reload(seen_generation))

    def _reload(self, seen_generation: int) -> Secret:
        with self._lock:
            if self._generation == seen_generation or self._secret is None:
                self._store(self.source.refresh())
            assert self._secret is not None
            return self._secret

    def _store(self, secret: Secret) -> None:
        secret = checked(secret, self.min_length, pem=self.kind == "secret")
        peer = self.peer.loaded if self.peer is not None else None
        if peer is not None and peer == secret:
            raise ConfigurationError(
                f"the {self.scope_name} {self.kind} ({secret.source}) is the same as the "
                f"{self.peer.scope_name if self.peer else ''} {self.kind} ({peer.source}); "
                f"use two different {self.kind}s so a read key cannot trade"
            )
        self._secret = secret
        self._generation += 1

    def __repr__(self) -> str:
        state = self._secret.fingerprint if self._secret else "not loaded"
        name = self.scope_name if self.kind == "key" else f"{self.scope_name} {self.kind}"
        return f"KeySlot({name}, {self.source.description}, {state})"


KeyInput = str | SecretStr | Secret | KeySource | Callable[[], str | SecretStr | Secret]


def _from_ref(ref: str) -> KeySource:
    from ._secrets import secret  # optional backends are imported only when a reference is used

    source: KeySource = secret(ref)
    return source


def resolve_source(
    scope_name: str,
    explicit: KeyInput | None,
    settings_fields: dict[str, object],
    provider_env: str | None,
    kind: str = "key",
) -> KeySource:
    """Pick the source for one scope, first match wins; name every place looked at if none.

    ``kind`` is ``"key"`` (the API key) or ``"secret"`` (a signed provider's signing secret,
    from ``<scope>_secret=`` and ``COINGUARD_<SCOPE>_SECRET[_FILE|_REF]``).
    """
    arg = f"{scope_name}_{kind}"
    if explicit is not None:
        if isinstance(explicit, str | SecretStr | Secret):
            return ValueSource(explicit, f"the {arg} argument")
        if isinstance(explicit, KeySource):
            return explicit
        if callable(explicit):
            name = getattr(explicit, "__qualname__", type(explicit).__name__)
            return CallableSource(explicit, f"{arg} callable {name}")
        given = explicit.kind if isinstance(explicit, Unusable) else type(explicit).__name__
        raise ArgumentTypeError(
            f"{arg} must be a str, SecretStr, callable or key source, not {given}"
        )
    var = f"COINGUARD_{arg.upper()}"
    key = settings_fields.get("key")
    if isinstance(key, SecretStr):
        return ValueSource(key, f"settings {var}")
    file = settings_fields.get("file")
    if file:
        return FileSource(str(file), via=f"{var}_FILE")
    ref = settings_fields.get("ref")
    if isinstance(ref, str) and ref:
        return _from_ref(ref)
    if provider_env and provider_env in os.environ:
        return EnvSource(provider_env)
    looked = [f"the {arg} argument", var, f"{var}_FILE", f"{var}_REF"]
    if provider_env:
        looked.append(provider_env)
    raise MissingKeyError(f"no {scope_name} {kind} found; looked in: " + ", ".join(looked))
