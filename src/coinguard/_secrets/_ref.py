"""``secret(ref)``: one string picks the store; the result is a cached, lazy :class:`KeySource`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from .._exceptions import ConfigurationError
from ._aws import AwsBackend
from ._base import Backend, ParsedRef, parse_ref
from ._cache import MAX_STALE_SECONDS, NEGATIVE_TTL_SECONDS, SecretRef, _utcnow
from ._cloud import AzureBackend, GcpBackend
from ._keyring import KeyringBackend
from ._local import DotenvBackend, EnvBackend, FileBackend
from ._onepassword import OnePasswordBackend
from ._vault import VaultBackend

__all__ = ["SCHEMES", "secret"]

SCHEMES: dict[str, Callable[[ParsedRef], Backend]] = {
    "env": EnvBackend,
    "file": FileBackend,
    "dotenv": DotenvBackend,
    "keyring": KeyringBackend,
    "op": OnePasswordBackend,
    "aws-sm": AwsBackend,
    "vault": VaultBackend,
    "gcp-sm": GcpBackend,
    "azure-kv": AzureBackend,
}


def secret(
    ref: str,
    *,
    ttl: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    metadata_hook: Callable[[str], None] | None = None,
    max_age: timedelta = timedelta(days=90),
    expiry_warning: timedelta = timedelta(days=7),
    now: Callable[[], datetime] = _utcnow,
    negative_ttl: float = NEGATIVE_TTL_SECONDS,
    max_stale: float = MAX_STALE_SECONDS,
) -> SecretRef:
    """Return a key source for a secret reference. Nothing is fetched until the first ``load()``.

    Schemes: ``env://VAR``, ``file:///abs/path``, ``dotenv://path/.env#VAR``,
    ``keyring://service/user``, ``op://vault/item/field``, ``aws-sm://id#field``,
    ``vault://mount/path#field``, ``gcp-sm://projects/p/secrets/s/versions/v``,
    ``azure-kv://vault/name``. ``ttl`` is in seconds of ``clock``; ``metadata_hook`` receives each
    key-age finding; ``max_age``/``expiry_warning`` set the age policy, judged at ``now()``.
    ``negative_ttl`` is how long a failed first fetch is remembered (callers fail at once), and
    ``max_stale`` how long past its ``ttl`` the last good key is served while re-fetches fail.

    >>> ref = secret("aws-sm://prod/tokenmetrics#read_key?region=eu-west-1", ttl=600)
    >>> ref.description
    'secret aws-sm://prod/tokenmetrics#read_key?region=eu-west-1'
    >>> ref.local, ref.reloadable
    (False, True)
    """
    parsed = parse_ref(ref.strip())
    factory = SCHEMES.get(parsed.scheme)
    if factory is None:
        raise ConfigurationError(
            f"secret reference {ref!r}: unknown scheme {parsed.scheme!r}; "
            f"use one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    return SecretRef(
        factory(parsed),
        ttl=ttl,
        clock=clock,
        metadata_hook=metadata_hook,
        max_age=max_age,
        expiry_warning=expiry_warning,
        now=now,
        negative_ttl=negative_ttl,
        max_stale=max_stale,
    )
