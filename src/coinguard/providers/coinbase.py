"""Coinbase Advanced Trade REST API (https://docs.cdp.coinbase.com/advanced-trade).

Sourced from Coinbase's Advanced Trade docs and its Python SDK (coinbase-advanced-py): root
``https://api.coinbase.com``, routes under ``/api/v3/brokerage``; CDP keys sign one JWT per
request, ``Authorization: Bearer <JWT>``, ES256 for a PEM EC key and EdDSA for a base64
Ed25519 key, with ``sub``/``kid`` the key name, ``iss`` "cdp", ``nbf``, ``exp`` two minutes
later, ``uri`` "METHOD host/path" (no query) and a random ``nonce``; the SDK reads
``COINBASE_API_KEY`` and ``COINBASE_API_SECRET``. An order may fail with HTTP 200:
``{"success": false, "error_response": {"error": ..., "message": ...}}``. The key check is
``GET /api/v3/brokerage/key_permissions`` (``can_view``, ``can_trade``, ``can_transfer``).
Rate-limit headers ``x-ratelimit-limit/-remaining/-reset`` are synced into the quota; 30
private requests per second per user is a third-party figure (a default to override), not an
official one. Coinbase has answered throttling with 401 instead of 429 (coinbase-advanced-py#60):
a 401 whose headers say nothing remains is a rate limit here, never a bad key.

Orders get a ``client_order_id`` in their JSON body (coinguard makes one unless the caller
gives one). Coinbase's SDK documents re-sending the same ``client_order_id`` as the guard
against duplicate orders and offers no lookup by it, so an order whose answer was lost is
sent again with the same id, up to 4 sends in all, and the answer is the order placed first.

>>> from coinguard import get_provider
>>> p = get_provider("coinbase")
>>> p.scope_of("GET", "/api/v3/brokerage/accounts"), p.scope_of("POST", "/api/v3/brokerage/orders")
(<Scope.READ: 'read'>, <Scope.TRADE: 'trade'>)
"""

from __future__ import annotations

from .._provider import ClientOrderId, Provider, SignedKey
from .._quota import QuotaPolicy, Window
from .._signing import CoinbaseSigner
from .._verify import KeyCheck, coinbase_key_permissions

__all__ = ["PROFILE"]

PROFILE = Provider(
    name="coinbase",
    base_url="https://api.coinbase.com",
    # the key name goes into the JWT; the header then carries the signed token only
    auth=SignedKey(
        "Authorization",
        CoinbaseSigner(),
        signed_routes=["* /api/v3/brokerage/*"],
        secret_params=(),
        secret_headers=("Authorization",),
    ),
    read_routes=["POST /api/v3/brokerage/orders/preview"],
    read_key_env="COINBASE_API_KEY",
    read_secret_env="COINBASE_API_SECRET",  # noqa: S106 - a variable name
    trade_key_env="COINBASE_TRADE_API_KEY",
    trade_secret_env="COINBASE_TRADE_API_SECRET",  # noqa: S106
    envelope=True,  # an order that failed with HTTP 200 says success: false
    error_code_at=(("error_response", "error"),),  # the failure reason, named in the error
    request_id_headers=(),
    quota=QuotaPolicy([Window.per_second(30, name="30/s (third-party figure)")]),
    key_check=KeyCheck("GET", "/api/v3/brokerage/key_permissions", coinbase_key_permissions),
    # no lookup by client_order_id (list orders has no such filter); a re-send with the same
    # id is the guard Coinbase documents, and it answers with the order placed first
    client_order_id=ClientOrderId(
        routes=["POST /api/v3/brokerage/orders"],
        lookup=None,
        param="client_order_id",
        where="json",
        max_sends=4,
    ),
    throttles_with_401=True,  # coinbase-advanced-py#60
)
