"""pytest plugin: sandbox fixtures, registered through the ``pytest11`` entry point.

Importing this module is cheap: the sandbox is only imported when a fixture is used.

``coinguard_sandbox``
    A started :class:`coinguard.sandbox.Sandbox` with the default config, stopped after the test.
``coinguard_sandbox_factory``
    A callable ``(config=None) -> Sandbox`` returning a started sandbox; all stop at teardown.
``coinguard_fresh_quota``
    Empties the process-wide memory quota store (``quota_store="memory"``, the default) before
    the test, so a 429 penalty or a spent window of one test does not carry into the next.
    Not automatic: use it, or make it autouse in your ``conftest.py``.

Example::

    def test_my_code_reads_prices(coinguard_sandbox):
        prices = my_app.fetch_prices(base_url=coinguard_sandbox.base_url,
                                     key=coinguard_sandbox.keys.read)
        assert coinguard_sandbox.ledger.violations() == []
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from coinguard.sandbox import Sandbox, SandboxConfig

__all__ = ["coinguard_fresh_quota", "coinguard_sandbox", "coinguard_sandbox_factory"]


@pytest.fixture
def coinguard_fresh_quota() -> None:
    """Start the test with an empty process-wide memory quota store."""
    from coinguard._quota import shared_memory_store

    shared_memory_store().clear()


@pytest.fixture
def coinguard_sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes on demand: ``coinguard_sandbox_factory(SandboxConfig(...))``."""
    from coinguard.sandbox import Sandbox

    started: list[Sandbox] = []

    def factory(config: SandboxConfig | None = None) -> Sandbox:
        sandbox = Sandbox(config).start()
        started.append(sandbox)
        return sandbox

    try:
        yield factory
    finally:
        for sandbox in reversed(started):
            sandbox.stop()


@pytest.fixture
def coinguard_sandbox(
    coinguard_sandbox_factory: Callable[..., Sandbox],
) -> Sandbox:
    """A started sandbox with the default config, stopped after the test."""
    return coinguard_sandbox_factory()
