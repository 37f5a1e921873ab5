"""A provider's own error codes, turned into coinguard errors (sans-I/O).

A provider module declares where its bodies carry an error code and what each code means
(:class:`coinguard.ErrorCode`); this module turns one answer into the error the caller gets:
the class (authentication, permission, rate limit, a key sent to the wrong host), the
provider's hint, and for rate limits how long to wait. A limit that lasts until the next UTC
day or month sets ``retry_after`` to that moment, which the retry deadline never reaches, so
the call fails at once with the time it may try again.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ._exceptions import (
    APIStatusError,
    AuthenticationError,
    CoinguardError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._provider import ErrorCode, ErrorWait

__all__ = ["coded_error", "wait_seconds"]

_CLASSES: dict[str, type[APIStatusError]] = {
    "auth": AuthenticationError,
    "permission": PermissionDeniedError,
    "payment": PermissionDeniedError,
    "rate_limit": RateLimitError,
    "invalid": APIStatusError,
    "not_found": NotFoundError,
}


def wait_seconds(wait: ErrorWait, now: float, announced: float | None) -> float | None:
    """Seconds until a limit of this kind has room again, at wall-clock ``now``.

    >>> wait_seconds("day", 86_400 * 10 + 3_600, None)
    82800.0
    """
    if wait == "backoff":
        return announced
    if wait == "minute":
        return max(announced or 0.0, 60.0)
    moment = datetime.fromtimestamp(now, timezone.utc)
    if wait == "day":
        start = datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
        end = start + timedelta(days=1)
    else:  # "month", "never": the monthly allowance comes back with the next UTC month
        year, month = moment.year + moment.month // 12, moment.month % 12 + 1
        end = datetime(year, month, 1, tzinfo=timezone.utc)
    return max(announced or 0.0, (end - moment).total_seconds())


def coded_error(
    provider: str,
    code: str,
    meaning: ErrorCode,
    *,
    where: str,
    status: int,
    text: str,
    announced: float | None,
    now: float,
    **common: Any,
) -> CoinguardError:
    """The coinguard error for the provider's error ``code`` in an answer with ``status``.

    ``text`` is the provider's own (redacted) message, ``announced`` a ``Retry-After`` if the
    answer carried one; ``common`` holds ``body``, ``request_id``, ``method``, ``url``.
    """
    if announced is None and meaning.until is not None:  # "IP banned until 1660090423228"
        found = re.search(meaning.until, text)
        if found is not None:
            announced = max(0.0, int(found.group(1)) / 1000 - now)
    if announced is None and meaning.hold is not None:  # a lockout that names no end
        announced = meaning.hold
    said = f" ({text})" if text else ""
    message = f"{where}: HTTP {status}, {provider} error {code}{said}"
    if meaning.hint:
        message += f": {meaning.hint}"
    if meaning.kind == "wrong_host":
        return ConfigurationError(message)
    cls = _CLASSES[meaning.kind]
    if cls is not RateLimitError:
        return cls(message, status_code=status, **common)
    after = wait_seconds(meaning.wait, now, announced)
    if after is not None:
        message += f" (retry after {after:.1f}s)"
    return RateLimitError(
        message, retry_after=after, final=meaning.wait == "never", status_code=status, **common
    )
