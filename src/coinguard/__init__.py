"""coinguard: a safe client for keyed crypto-data APIs.

Scoped read/trade keys, origin-pinned auth, leak-proof logs, exact shared quotas, and retries
that never duplicate an order.

>>> import coinguard
>>> with coinguard.Client(provider="tokenmetrics") as tm:     # doctest: +SKIP
...     btc = tm.get("/price", params={"symbol": "BTC"})
"""

import importlib as _importlib
import typing as _typing

from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ArgumentTypeError,
    AuthenticationError,
    BudgetExceededError,
    CoinguardError,
    ConfigurationError,
    EnvelopeError,
    InsecureTransportError,
    KeyAgeWarning,
    KeyPrivilegeWarning,
    MissingKeyError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OverPrivilegedKeyError,
    PermissionDeniedError,
    QuotaExceededError,
    QuotaStoreError,
    RateLimitError,
    ResponseDecodeError,
    ScopeError,
    SecretBackendError,
    ServerError,
    TradeRefusedError,
)

if _typing.TYPE_CHECKING:
    from ._alerts import Alert, AnomalyWarning, Thresholds, Watch
    from ._audit import AuditLog, read_audit
    from ._batch import BatchResult
    from ._budget import Budget
    from ._client import AsyncClient, Client
    from ._doctor import diagnose
    from ._endpoints import Endpoint, Endpoints, Pager, Param, Response
    from ._keys import KeyMetadata, KeySource
    from ._models import Candle, Model, Price
    from ._observe import SCHEMA_VERSION, Attempt, Observer
    from ._otel import RedactingSpanProcessor, Tracing, httpx_async_request_hook, httpx_request_hook
    from ._paging import PageFailure, PaginationError, Resume, Rows
    from ._pairs import TradeCounter
    from ._prom import Metrics
    from ._provider import (
        BearerKey,
        ClientOrderId,
        ErrorCode,
        HeaderKey,
        Nonce,
        OrderForm,
        Plan,
        Provider,
        QueryKey,
        RouteQuota,
        Scope,
        ServerTime,
        SignedKey,
        get_provider,
    )
    from ._quota import (
        DecayingCounter,
        MemoryStore,
        Quota,
        QuotaPolicy,
        QuotaStatus,
        QuotaStore,
        RedisStore,
        Reservation,
        SQLiteStore,
        Window,
        WindowStatus,
    )
    from ._redact import redact
    from ._retry import RetryDetails, RetryPolicy
    from ._secret import Secret, fingerprint
    from ._secrets import SecretRef, check_age, secret
    from ._settings import Settings
    from ._signing import (
        BinanceSigner,
        CoinbaseSigner,
        KrakenSigner,
        Signature,
        SigningInput,
        binance_signature,
        kraken_signature,
    )
    from ._tool_errors import describe_error as describe_tool_error
    from ._tools import AgentTool, Toolset, agent_tools
    from ._trade_tools import OrderRequest, TradePolicy
    from ._verify import (
        KeyCheck,
        KeyPermissions,
        KeyReport,
        Usage,
        binance_api_restrictions,
        coinbase_key_permissions,
        kraken_api_key_info,
        sandbox_key_info,
    )

# What a name is imported from, on first use: `import coinguard` stays as light as httpx
# (pydantic, the settings machinery, observers and secret backends load when needed).
_LAZY: dict[str, tuple[str, str]] = {
    "AgentTool": ("_tools", "AgentTool"),
    "Alert": ("_alerts", "Alert"),
    "AnomalyWarning": ("_alerts", "AnomalyWarning"),
    "AsyncClient": ("_client", "AsyncClient"),
    "Attempt": ("_observe", "Attempt"),
    "AuditLog": ("_audit", "AuditLog"),
    "BatchResult": ("_batch", "BatchResult"),
    "BearerKey": ("_provider", "BearerKey"),
    "BinanceSigner": ("_signing", "BinanceSigner"),
    "Budget": ("_budget", "Budget"),
    "Candle": ("_models", "Candle"),
    "Client": ("_client", "Client"),
    "ClientOrderId": ("_provider", "ClientOrderId"),
    "CoinbaseSigner": ("_signing", "CoinbaseSigner"),
    "DecayingCounter": ("_quota", "DecayingCounter"),
    "Endpoint": ("_endpoints", "Endpoint"),
    "Endpoints": ("_endpoints", "Endpoints"),
    "ErrorCode": ("_provider", "ErrorCode"),
    "HeaderKey": ("_provider", "HeaderKey"),
    "KeyCheck": ("_verify", "KeyCheck"),
    "KeyMetadata": ("_keys", "KeyMetadata"),
    "KeyPermissions": ("_verify", "KeyPermissions"),
    "KeyReport": ("_verify", "KeyReport"),
    "KeySource": ("_keys", "KeySource"),
    "KrakenSigner": ("_signing", "KrakenSigner"),
    "MemoryStore": ("_quota", "MemoryStore"),
    "Metrics": ("_prom", "Metrics"),
    "Model": ("_models", "Model"),
    "Nonce": ("_provider", "Nonce"),
    "Observer": ("_observe", "Observer"),
    "OrderForm": ("_provider", "OrderForm"),
    "OrderRequest": ("_trade_tools", "OrderRequest"),
    "PageFailure": ("_paging", "PageFailure"),
    "Pager": ("_endpoints", "Pager"),
    "PaginationError": ("_paging", "PaginationError"),
    "Param": ("_endpoints", "Param"),
    "Plan": ("_provider", "Plan"),
    "Price": ("_models", "Price"),
    "Provider": ("_provider", "Provider"),
    "QueryKey": ("_provider", "QueryKey"),
    "RouteQuota": ("_provider", "RouteQuota"),
    "Quota": ("_quota", "Quota"),
    "QuotaPolicy": ("_quota", "QuotaPolicy"),
    "QuotaStatus": ("_quota", "QuotaStatus"),
    "QuotaStore": ("_quota", "QuotaStore"),
    "RedactingSpanProcessor": ("_otel", "RedactingSpanProcessor"),
    "RedisStore": ("_quota", "RedisStore"),
    "Reservation": ("_quota", "Reservation"),
    "Response": ("_endpoints", "Response"),
    "Resume": ("_paging", "Resume"),
    "RetryDetails": ("_retry", "RetryDetails"),
    "RetryPolicy": ("_retry", "RetryPolicy"),
    "Rows": ("_paging", "Rows"),
    "SCHEMA_VERSION": ("_observe", "SCHEMA_VERSION"),
    "SQLiteStore": ("_quota", "SQLiteStore"),
    "Scope": ("_provider", "Scope"),
    "Secret": ("_secret", "Secret"),
    "SecretRef": ("_secrets", "SecretRef"),
    "ServerTime": ("_provider", "ServerTime"),
    "Settings": ("_settings", "Settings"),
    "Signature": ("_signing", "Signature"),
    "SignedKey": ("_provider", "SignedKey"),
    "SigningInput": ("_signing", "SigningInput"),
    "Thresholds": ("_alerts", "Thresholds"),
    "Toolset": ("_tools", "Toolset"),
    "Tracing": ("_otel", "Tracing"),
    "TradeCounter": ("_pairs", "TradeCounter"),
    "TradePolicy": ("_trade_tools", "TradePolicy"),
    "Usage": ("_verify", "Usage"),
    "Watch": ("_alerts", "Watch"),
    "Window": ("_quota", "Window"),
    "WindowStatus": ("_quota", "WindowStatus"),
    "agent_tools": ("_tools", "agent_tools"),
    "binance_api_restrictions": ("_verify", "binance_api_restrictions"),
    "binance_signature": ("_signing", "binance_signature"),
    "check_age": ("_secrets", "check_age"),
    "coinbase_key_permissions": ("_verify", "coinbase_key_permissions"),
    "describe_tool_error": ("_tool_errors", "describe_error"),
    "diagnose": ("_doctor", "diagnose"),
    "fingerprint": ("_secret", "fingerprint"),
    "get_provider": ("_provider", "get_provider"),
    "httpx_async_request_hook": ("_otel", "httpx_async_request_hook"),
    "httpx_request_hook": ("_otel", "httpx_request_hook"),
    "kraken_api_key_info": ("_verify", "kraken_api_key_info"),
    "kraken_signature": ("_signing", "kraken_signature"),
    "read_audit": ("_audit", "read_audit"),
    "redact": ("_redact", "redact"),
    "sandbox_key_info": ("_verify", "sandbox_key_info"),
    "secret": ("_secrets", "secret"),
}


if not _typing.TYPE_CHECKING:  # seen by a type checker, it would make every name Any

    def __getattr__(name: str) -> _typing.Any:
        where = _LAZY.get(name)
        if where is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(f".{where[0]}", __name__), where[1])
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AgentTool",
    "Alert",
    "AnomalyWarning",
    "ArgumentTypeError",
    "AsyncClient",
    "Attempt",
    "AuditLog",
    "AuthenticationError",
    "BatchResult",
    "BearerKey",
    "BinanceSigner",
    "Budget",
    "BudgetExceededError",
    "Candle",
    "Client",
    "ClientOrderId",
    "CoinbaseSigner",
    "CoinguardError",
    "ConfigurationError",
    "DecayingCounter",
    "Endpoint",
    "Endpoints",
    "EnvelopeError",
    "ErrorCode",
    "HeaderKey",
    "InsecureTransportError",
    "KeyAgeWarning",
    "KeyCheck",
    "KeyMetadata",
    "KeyPermissions",
    "KeyPrivilegeWarning",
    "KeyReport",
    "KeySource",
    "KrakenSigner",
    "MemoryStore",
    "Metrics",
    "MissingKeyError",
    "Model",
    "Nonce",
    "NotFoundError",
    "Observer",
    "OrderForm",
    "OrderOutcomeUnknownError",
    "OrderRequest",
    "OverPrivilegedKeyError",
    "PageFailure",
    "Pager",
    "PaginationError",
    "Param",
    "PermissionDeniedError",
    "Plan",
    "Price",
    "Provider",
    "QueryKey",
    "Quota",
    "QuotaExceededError",
    "QuotaPolicy",
    "QuotaStatus",
    "QuotaStore",
    "QuotaStoreError",
    "RateLimitError",
    "RedactingSpanProcessor",
    "RedisStore",
    "Reservation",
    "Response",
    "ResponseDecodeError",
    "Resume",
    "RetryDetails",
    "RetryPolicy",
    "RouteQuota",
    "Rows",
    "SQLiteStore",
    "Scope",
    "ScopeError",
    "Secret",
    "SecretBackendError",
    "SecretRef",
    "ServerError",
    "ServerTime",
    "Settings",
    "Signature",
    "SignedKey",
    "SigningInput",
    "Thresholds",
    "Toolset",
    "Tracing",
    "TradeCounter",
    "TradePolicy",
    "TradeRefusedError",
    "Usage",
    "Watch",
    "Window",
    "WindowStatus",
    "agent_tools",
    "binance_api_restrictions",
    "binance_signature",
    "check_age",
    "coinbase_key_permissions",
    "describe_tool_error",
    "diagnose",
    "fingerprint",
    "get_provider",
    "httpx_async_request_hook",
    "httpx_request_hook",
    "kraken_api_key_info",
    "kraken_signature",
    "read_audit",
    "redact",
    "sandbox_key_info",
    "secret",
]
