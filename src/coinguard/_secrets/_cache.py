"""The caching layer every secret reference goes through, and the key-age policy.

:class:`SecretRef` is a :class:`coinguard._keys.KeySource`. It caches the value for ``ttl`` seconds
of an injected monotonic clock, collapses concurrent fetches into one, keeps serving the last good
key when a background re-fetch fails, and checks the key's age each time a new value arrives.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from .._exceptions import CoinguardError, ConfigurationError, seal
from .._keys import KeyMetadata, _has_bad_char
from .._secret import Secret
from ._base import Backend, KeyAgeWarning, SecretBackendError

__all__ = ["SecretRef", "check_age"]

logger = logging.getLogger("coinguard.keys")

# After a failed background re-fetch, wait this long (at most) before asking the backend again,
# so an outage does not turn every request into a slow failing call.
STALE_RETRY_SECONDS = 30.0
# After a failed first fetch, fail at once for this long: callers arriving behind one failed
# flight share its failure instead of each waiting out a dead backend's timeout in turn.
NEGATIVE_TTL_SECONDS = 5.0
# How long past its ttl the last good key is still served while re-fetches fail.
MAX_STALE_SECONDS = 3600.0


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 1 else f"{delta.total_seconds() / 3600:.1f} hours"


def check_age(
    meta: KeyMetadata | None,
    *,
    max_age: timedelta = timedelta(days=90),
    expiry_warning: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> list[str]:
    """Return the findings of the key-age policy: too old, expired, or expiring soon.

    Age counts from the last rotation, else from creation. Naive datetimes are taken as UTC.

    >>> from datetime import datetime, timezone
    >>> meta = KeyMetadata(created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> check_age(meta, now=datetime(2024, 6, 1, tzinfo=timezone.utc))
    ['key is 152 days old (since 2024-01-01T00:00:00+00:00), over the maximum age of 90 days']
    """
    if meta is None:
        return []
    now = _aware(now or _utcnow())
    findings: list[str] = []
    since = meta.rotated_at or meta.created_at
    if since is not None and now - _aware(since) > max_age:
        findings.append(
            f"key is {_days(now - _aware(since))} old (since {_aware(since).isoformat()}), "
            f"over the maximum age of {_days(max_age)}"
        )
    if meta.expires_at is not None:
        expires = _aware(meta.expires_at)
        if expires <= now:
            findings.append(f"key expired at {expires.isoformat()}")
        elif expires - now <= expiry_warning:
            findings.append(f"key expires at {expires.isoformat()}, in {_days(expires - now)}")
    return findings


class SecretRef:
    """A lazily fetched, cached secret: a :class:`KeySource` over one backend.

    ``load()`` serves the cached value until ``ttl`` seconds have passed, then fetches again; if
    that fails it logs a warning and keeps serving the last good key, for at most ``max_stale``
    seconds past its ``ttl`` (after that the error is raised and says why). ``refresh()``
    (called by the client after a 401) always fetches and raises when it cannot, because the
    old key was rejected. Concurrent fetches collapse into one, failures included: callers
    waiting on a failed first fetch get its error, and for ``negative_ttl`` seconds after it
    ``load()`` fails at once without asking the backend.

    >>> from coinguard._secrets import secret
    >>> ref = secret("env://TM_READ_KEY", ttl=60)
    >>> ref
    SecretRef(env://TM_READ_KEY)
    """

    reloadable = True
    # The client asks a live source on every request; the TTL cache above keeps that cheap.
    live = True

    def __init__(
        self,
        backend: Backend,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        metadata_hook: Callable[[str], None] | None = None,
        max_age: timedelta = timedelta(days=90),
        expiry_warning: timedelta = timedelta(days=7),
        now: Callable[[], datetime] = _utcnow,
        negative_ttl: float = NEGATIVE_TTL_SECONDS,
        max_stale: float = MAX_STALE_SECONDS,
    ) -> None:
        if ttl < 0:
            raise ConfigurationError(f"secret {backend.reference}: ttl must be >= 0, got {ttl}")
        for name, value in (("negative_ttl", negative_ttl), ("max_stale", max_stale)):
            if not value >= 0:
                raise ConfigurationError(f"secret {backend.reference}: {name} must be >= 0 seconds")
        self._backend = backend
        self._ttl = ttl
        self._clock = clock
        self._hook = metadata_hook
        self._max_age = max_age
        self._expiry_warning = expiry_warning
        self._now = now
        self._lock = threading.Lock()
        self._value: Secret | None = None
        self._fresh_until = float("-inf")
        self._generation = 0
        self._negative_ttl = negative_ttl
        self._max_stale = max_stale
        self._good_until = float("-inf")  # the last good key is not served after this
        self._failure: SecretBackendError | None = None  # the failed first fetch, shared
        self._failed_until = float("-inf")

    @property
    def reference(self) -> str:
        """The reference text this source was built from."""
        return self._backend.reference

    @property
    def description(self) -> str:
        """Where the key comes from, for error messages and logs."""
        return f"secret {self._backend.reference}"

    @property
    def local(self) -> bool:
        """True for variables and files, which the client loads eagerly."""
        return self._backend.local

    @property
    def generation(self) -> int:
        """How many successful fetches this reference has made."""
        return self._generation

    def peek(self) -> Secret | None:
        """The cached key while it is within its ``ttl``, else None; never fetches."""
        cached = self._value
        return cached if cached is not None and self._clock() < self._fresh_until else None

    def load(self) -> Secret:
        """Return the cached key, fetching it when missing or older than ``ttl``."""
        cached = self._value
        if cached is not None and self._clock() < self._fresh_until:
            return cached
        # While another thread re-fetches, callers holding a good key do not wait for it;
        # without one they wait for that fetch and share its outcome, failure included.
        if not self._lock.acquire(blocking=cached is None):
            return cached  # type: ignore[return-value]
        try:
            cached = self._value
            now = self._clock()
            if cached is not None and now < self._fresh_until:
                return cached
            if cached is None and self._failure is not None and now < self._failed_until:
                raise self._shared_failure(self._failure, self._failed_until - now)
            try:
                secret, changed = self._fetch_locked()
            except SecretBackendError as exc:
                if cached is None:
                    self._failure, self._failed_until = exc, now + self._negative_ttl
                    raise
                return self._stale(cached, exc, now)
        finally:
            self._lock.release()
        if changed:
            self._check_age()
        return secret

    def _stale(self, cached: Secret, exc: SecretBackendError, now: float) -> Secret:
        """The last good key after a failed re-fetch, while it is within ``max_stale``."""
        if now >= self._good_until:
            self._value, self._fresh_until = None, float("-inf")
            self._failure, self._failed_until = exc, now + self._negative_ttl
            raise SecretBackendError(
                self.reference,
                exc.reason,
                f"re-fetches failed for longer than max_stale={self._max_stale:g}s past the ttl,"
                " so the last good key is no longer used",
            ) from None
        self._fresh_until = now + min(self._ttl, STALE_RETRY_SECONDS)
        logger.warning(
            "secret %s: re-fetch failed (%s); serving the last good key %s",
            self.reference,
            exc.reason,
            cached.fingerprint,
        )
        return cached

    def _shared_failure(self, failure: SecretBackendError, left: float) -> SecretBackendError:
        return SecretBackendError(
            self.reference,
            failure.reason,
            f"the last fetch failed; not asking the backend again for {left:.1f}s",
        )

    def refresh(self) -> Secret:
        """Fetch the key again, bypassing the cache; raise if the fetch fails.

        Callers that arrive while another refresh is running get that refresh's result.
        """
        seen = self._generation
        with self._lock:
            if self._generation != seen and self._value is not None:
                return self._value
            try:
                secret, changed = self._fetch_locked()
            except ConfigurationError:
                self._value = None  # the old key was rejected: never serve it again
                self._fresh_until = float("-inf")
                raise
        if changed:
            self._check_age()
        return secret

    def metadata(self) -> KeyMetadata | None:
        """Ask the backend what it knows about the key (creation, rotation, expiry, version)."""
        return self._backend.metadata()

    def _fetch_locked(self) -> tuple[Secret, bool]:
        try:
            secret = self._fetch_checked()
        except CoinguardError as exc:
            error = exc
        except Exception as exc:  # a backend library's own failure: named, never shown
            error = SecretBackendError(self.reference, "unreachable", type(exc).__name__)
        else:
            changed = secret != self._value
            self._value = secret
            self._fresh_until = self._clock() + self._ttl
            self._good_until = self._fresh_until + self._max_stale
            self._failure = None
            self._generation += 1
            return secret, changed
        # Raised outside the except clause and without the frames below, which held the value
        # (a backend's decode error keeps the whole document, its frames the fetched text).
        raise seal(error).with_traceback(None)

    def _fetch_checked(self) -> Secret:
        raw = self._backend.fetch()
        if not isinstance(raw, str):
            raise SecretBackendError(self.reference, "invalid", "the value is not text")
        value = raw.strip()
        if value and not _has_bad_char(value):
            return Secret(value, source=self.description)
        del raw, value
        raise SecretBackendError(
            self.reference, "invalid", "empty, or whitespace or control characters in the value"
        )

    def _check_age(self) -> None:
        try:
            meta = self._backend.metadata()
        except ConfigurationError as exc:
            reason = getattr(exc, "reason", type(exc).__name__)
            logger.info("secret %s: no metadata for the age check (%s)", self.reference, reason)
            return
        findings = check_age(
            meta, max_age=self._max_age, expiry_warning=self._expiry_warning, now=self._now()
        )
        for finding in findings:
            message = f"secret {self.reference}: {finding}"
            logger.warning("%s", message)
            if self._hook is not None:
                self._hook(message)
            warnings.warn(message, KeyAgeWarning, stacklevel=3)

    def __repr__(self) -> str:
        return f"SecretRef({self._backend.reference})"
