"""Secret references: one string that says where a key lives, resolved lazily and cached.

>>> from coinguard._secrets import secret
>>> secret("vault://secret/coinguard/tokenmetrics#read_key")
SecretRef(vault://secret/coinguard/tokenmetrics#read_key)

Each backend imports its library only when it first fetches; see ``docs/keys.md``.
"""

from __future__ import annotations

from ._base import KeyAgeWarning, SecretBackendError
from ._cache import SecretRef, check_age
from ._ref import secret

__all__ = ["KeyAgeWarning", "SecretBackendError", "SecretRef", "check_age", "secret"]
