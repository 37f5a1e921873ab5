"""coinguard: a safe client for keyed crypto-data APIs.

Scoped read/trade keys, origin-pinned auth, leak-proof logs, exact shared quotas, and retries
that never duplicate an order.

>>> import coinguard
>>> with coinguard.Client(provider="tokenmetrics") as tm:     # doctest: +SKIP
...     btc = tm.get("/price", params={"symbol": "BTC"})
"""

from ._client import AsyncClient, Client
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CoinguardError,
    ConfigurationError,
    EnvelopeError,
    InsecureTransportError,
    MissingKeyError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ScopeError,
    ServerError,
)
from ._keys import KeyMetadata, KeySource
from ._provider import BearerKey, HeaderKey, Provider, QueryKey, Scope, get_provider
from ._retry import RetryDetails, RetryPolicy
from ._secret import Secret, fingerprint
from ._settings import Settings

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BearerKey",
    "Client",
    "CoinguardError",
    "ConfigurationError",
    "EnvelopeError",
    "HeaderKey",
    "InsecureTransportError",
    "KeyMetadata",
    "KeySource",
    "MissingKeyError",
    "NotFoundError",
    "OrderOutcomeUnknownError",
    "PermissionDeniedError",
    "Provider",
    "QueryKey",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseDecodeError",
    "RetryDetails",
    "RetryPolicy",
    "Scope",
    "ScopeError",
    "Secret",
    "ServerError",
    "Settings",
    "fingerprint",
    "get_provider",
]
