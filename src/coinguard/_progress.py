"""Progress for long fetches: a ``tqdm.auto`` bar (an optional extra) and visible quota waits.

``progress=None`` shows a bar when tqdm is installed, ``True`` insists on one (an error names
the extra when tqdm is missing), ``False`` shows none. A quota wait longer than a second is
logged at INFO on ``coinguard.quota`` by the client whatever the bar; the bar shows it as its
postfix too ("waiting 4.0 s for the 100/min window").
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ._exceptions import ConfigurationError

__all__ = ["Progress"]


class Progress:
    """A bar, or nothing; ``page()`` advances it, ``waiting()`` sets its postfix."""

    def __init__(self, progress: bool | None, desc: str, total: int | None = None) -> None:
        if progress not in (None, True, False):
            raise ConfigurationError(f"progress must be True, False or None, got {progress!r}")
        self._bar: Any = None
        if progress is False:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if progress:
                raise ConfigurationError(
                    "a progress bar needs tqdm: pip install 'coinguard[progress]' "
                    "(or pass progress=False)"
                ) from None
            return
        self._bar = tqdm(
            total=total, desc=desc, unit="page" if total is None else "item", leave=False
        )

    def page(self) -> None:
        """One page (or batch item) done."""
        if self._bar is not None:
            self._bar.update(1)

    def advance(self, count: int) -> None:
        """``count`` items done at once (taken from a checkpoint)."""
        if self._bar is not None and count:
            self._bar.update(count)

    def waiting(self, text: str) -> None:
        """A quota wait is starting: say so on the bar."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
