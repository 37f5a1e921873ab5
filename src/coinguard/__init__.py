"""coinguard: a safe client for keyed crypto-data APIs.

Scoped read/trade keys, origin-pinned auth, leak-proof logs, exact shared quotas, and retries
that never duplicate an order.

>>> import coinguard
>>> with coinguard.Client(provider="tokenmetrics") as tm:     # doctest: +SKIP
...     btc = tm.get("/price", params={"symbol": "BTC"})
"""

from ._alerts import Alert, AnomalyWarning, Thresholds, Watch
from ._audit import AuditLog, read_audit
from ._batch import BatchResult
from ._budget import Budget
from ._client import AsyncClient, Client
from ._doctor import diagnose
from ._endpoints import Endpoint, Endpoints, Pager, Param, Response
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
