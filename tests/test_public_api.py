"""The public surface: one door, names equal __all__, a documented error tree."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import coinguard
from coinguard import _exceptions

CONTRACT = {
    "Client", "AsyncClient", "Provider", "HeaderKey", "QueryKey", "BearerKey", "Scope",
    "Settings", "CoinguardError", "ConfigurationError", "MissingKeyError", "ScopeError",
    "InsecureTransportError", "APIError", "APIStatusError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "RateLimitError", "ServerError",
    "APIConnectionError", "APITimeoutError", "ResponseDecodeError",
}  # fmt: skip


def test_public_names_equal_all() -> None:
    """Every public attribute of the package is in __all__, and every __all__ name exists."""
    public = {n for n in dir(coinguard) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(coinguard, n))}
    assert public - modules == set(coinguard.__all__)


def test_issue_contract_is_importable() -> None:
    """The names users were promised are all exported."""
    assert set(coinguard.__all__) >= CONTRACT


def test_error_tree_shape() -> None:
    """The hierarchy matches the documented tree."""
    c = coinguard
    assert issubclass(c.MissingKeyError, c.ConfigurationError)
    for cls in (c.ConfigurationError, c.ScopeError, c.InsecureTransportError, c.APIError):
        assert issubclass(cls, c.CoinguardError)
    for cls in (
        c.AuthenticationError,
        c.PermissionDeniedError,
        c.NotFoundError,
        c.RateLimitError,
        c.ServerError,
        c.EnvelopeError,
    ):
        assert issubclass(cls, c.APIStatusError)
    assert issubclass(c.APIStatusError, c.APIError)
    assert issubclass(c.APITimeoutError, c.APIConnectionError)
    assert issubclass(c.OrderOutcomeUnknownError, c.APIConnectionError)
    assert issubclass(c.ResponseDecodeError, c.APIError)


def test_every_error_is_documented_in_the_tree() -> None:
    """Each exception class appears in the module docstring's tree."""
    doc = _exceptions.__doc__ or ""
    for name in _exceptions.__all__:
        assert name in doc, name


def test_public_callables_have_docstrings() -> None:
    """Public API carries docstrings."""
    for name in coinguard.__all__:
        obj = getattr(coinguard, name)
        if callable(obj):
            assert inspect.getdoc(obj), name


def test_import_loads_only_the_error_tree() -> None:
    """`import coinguard` is cheap: the heavy dependencies load when a name that needs them
    is first used (benchmarks/import_time.py measures it)."""
    code = (
        "import sys, coinguard\n"
        "heavy = ('httpx', 'pydantic', 'pydantic_settings', 'tenacity', 'anyio')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "coinguard.Client\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == ""
    assert "httpx" in out[1]


def test_lazy_names_resolve_and_unknown_ones_say_so() -> None:
    for name in coinguard.__all__:
        assert getattr(coinguard, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        coinguard.Nope  # noqa: B018


def test_a_misspelled_name_is_still_a_type_error(tmp_path: Path) -> None:
    """The lazy names stay visible to mypy as they were; an unknown one is an error, not Any."""
    (tmp_path / "user.py").write_text(
        "import coinguard\nfrom coinguard import Window\nw = Window\nx = coinguard.Clinet\n"
    )
    args = ["--follow-imports=skip", "--no-incremental", "--cache-dir", str(tmp_path / "c")]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *args, "-m", "coinguard", "-m", "user"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert 'Module has no attribute "Clinet"' in result.stdout
    assert result.stdout.count("error:") == 1
