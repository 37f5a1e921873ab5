"""Any API, described by the caller: no base URL, the key in ``x-api-key``, no quota.

>>> from coinguard.providers.generic import PROFILE
>>> PROFILE.base_url is None
True
"""

from __future__ import annotations

from .._provider import Provider

PROFILE = Provider(name="generic", base_url=None)
