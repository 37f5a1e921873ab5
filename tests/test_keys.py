"""Key resolution order, validation, separation of read and trade keys."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

import coinguard
from coinguard import ConfigurationError, MissingKeyError, Settings
from coinguard._keys import FileSource, KeySlot, ValueSource, validate_key

BASE = "https://api.example.com/v2"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "COINGUARD_READ_KEY",
        "COINGUARD_TRADE_KEY",
        "COINGUARD_READ_KEY_FILE",
        "COINGUARD_TRADE_KEY_FILE",
        "COINGUARD_READ_KEY_REF",
        "COINGUARD_TRADE_KEY_REF",
        "TOKENMETRICS_API_KEY",
    ):
        monkeypatch.delenv(var, raising=False)


def _client(**kw: object) -> coinguard.Client:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "data": []})

    client = coinguard.Client(
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        **kw,  # type: ignore[arg-type]
    )
    client.seen = seen  # type: ignore[attr-defined]
    return client


def _sent_key(client: coinguard.Client, path: str = "/price") -> str:
    client.get(path)
    return str(client.seen[-1].headers["x-api-key"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("abc123", "abc123"), ("  abc123\n", "abc123"), ("\tk-ey_1=\r\n", "k-ey_1=")],
)
def test_validate_strips_surrounding_whitespace(raw: str, expected: str) -> None:
    """Secret files end in newlines; surrounding whitespace is stripped."""
    assert validate_key(raw, "test").reveal() == expected


@pytest.mark.parametrize("raw", ["", "   ", "\n"])
def test_empty_key_is_missing_and_names_source(raw: str) -> None:
    """An empty value is a MissingKeyError naming the source."""
    with pytest.raises(MissingKeyError, match="file /run/x"):
        validate_key(raw, "file /run/x")


@pytest.mark.parametrize("raw", ["ab c", "ab\ncd", "ab\x00cd", "ab\u200bcd", 'ab"\tcd'])
def test_inner_whitespace_or_control_is_refused_without_value(raw: str) -> None:
    """A key with whitespace/control characters inside fails, naming the source, not the value."""
    with pytest.raises(ConfigurationError) as info:
        validate_key(raw, "env var X")
    assert "env var X" in str(info.value)
    assert raw.strip() not in str(info.value)


def test_explicit_argument_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """explicit argument > settings > provider variable."""
    monkeypatch.setenv("COINGUARD_READ_KEY", "from-settings-abcdefgh")
    monkeypatch.setenv("TOKENMETRICS_API_KEY", "from-provider-abcdefgh")
    c = _client(provider="tokenmetrics", read_key="explicit-1-abcdefgh")
    assert _sent_key(c) == "explicit-1-abcdefgh"


def test_callable_then_settings_then_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """A callable is used; without it COINGUARD_READ_KEY; without that the provider variable."""
    monkeypatch.setenv("TOKENMETRICS_API_KEY", "from-provider-abcdefgh")
    assert _sent_key(
        _client(provider="tokenmetrics", read_key=lambda: "from-callable-abcdefgh")
    ) == ("from-callable-abcdefgh")
    assert _sent_key(_client(provider="tokenmetrics")) == "from-provider-abcdefgh"
    monkeypatch.setenv("COINGUARD_READ_KEY", "from-settings-abcdefgh")
    assert _sent_key(_client(provider="tokenmetrics")) == "from-settings-abcdefgh"


def test_key_file_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """COINGUARD_READ_KEY_FILE points at a secret file; its trailing newline is dropped."""
    f = tmp_path / "tm_read"
    f.write_text("file-key-9-abcdefgh\n")
    monkeypatch.setenv("COINGUARD_READ_KEY_FILE", str(f))
    assert _sent_key(_client(provider="tokenmetrics")) == "file-key-9-abcdefgh"


def test_missing_file_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A missing secret file is a MissingKeyError naming the file and the variable."""
    monkeypatch.setenv("COINGUARD_READ_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(MissingKeyError, match=r"nope.*COINGUARD_READ_KEY_FILE"):
        _client(provider="tokenmetrics")


def test_no_key_anywhere_lists_every_place() -> None:
    """The error says where it looked: argument, variables, provider variable."""
    with pytest.raises(MissingKeyError) as info:
        _client(provider="tokenmetrics")
    for place in ("read_key argument", "COINGUARD_READ_KEY", "_FILE", "TOKENMETRICS_API_KEY"):
        assert place in str(info.value)


def test_env_file_is_opt_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A .env file is read only when asked for."""
    env = tmp_path / ".env"
    env.write_text("COINGUARD_READ_KEY=from-dotenv-abcdefgh\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingKeyError):
        _client(provider="generic", base_url=BASE)
    assert (
        _sent_key(_client(provider="generic", base_url=BASE, env_file=env))
        == "from-dotenv-abcdefgh"
    )
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert (
        _sent_key(_client(provider="generic", base_url=BASE, settings=settings))
        == "from-dotenv-abcdefgh"
    )


def test_same_key_for_read_and_trade_is_refused() -> None:
    """Separation is the point of two keys: equal values fail at construction."""
    with pytest.raises(ConfigurationError, match="same") as info:
        _client(
            provider="sandbox",
            base_url=BASE,
            read_key="dup-key-1-abcdefgh",
            trade_key="dup-key-1-abcdefgh",
            allow_trading=True,
        )
    assert "dup-key-1-abcdefgh" not in str(info.value)


def test_read_only_client_ignores_trade_key_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without allow_trading the trade key is never resolved: a broken trade source is harmless."""
    monkeypatch.setenv("COINGUARD_TRADE_KEY_FILE", str(tmp_path))  # a directory: reading it fails
    c = _client(provider="sandbox", base_url=BASE, read_key="read-key-r1-abcdefgh")
    assert c._core.trade is None
    assert _sent_key(c) == "read-key-r1-abcdefgh"
    with pytest.raises(ConfigurationError, match="COINGUARD_TRADE_KEY_FILE"):
        _client(
            provider="sandbox", base_url=BASE, read_key="read-key-r1-abcdefgh", allow_trading=True
        )


def test_trading_client_without_trade_key_fails_early() -> None:
    """allow_trading=True with no trade key anywhere is a MissingKeyError at construction."""
    with pytest.raises(MissingKeyError, match="trade"):
        _client(
            provider="generic", base_url=BASE, read_key="read-key-r1-abcdefgh", allow_trading=True
        )


def test_callable_is_lazy_and_errors_hide_its_text() -> None:
    """A callable key is only called when needed; its exception text is not repeated."""
    calls: list[int] = []

    def fetch() -> str:
        calls.append(1)
        raise RuntimeError("secret-in-message")

    c = _client(provider="generic", base_url=BASE, read_key=fetch)
    assert calls == []
    with pytest.raises(ConfigurationError) as info:
        c.get("/price")
    assert "secret-in-message" not in str(info.value)
    assert info.value.__cause__ is None


def test_slot_reload_collapses_concurrent_reloads() -> None:
    """Two callers that saw the same generation trigger one refresh, not two."""
    values = iter(["key-1-abcdefghijk", "key-2-abcdefghijk", "key-3-abcdefghijk"])
    from coinguard._keys import CallableSource

    slot = KeySlot("read", CallableSource(lambda: next(values), "test"))
    first = slot.get()
    gen = slot.generation
    assert slot.reload(gen).reveal() == "key-2-abcdefghijk"
    assert slot.reload(gen).reveal() == "key-2-abcdefghijk"  # already reloaded since gen
    assert first.reveal() == "key-1-abcdefghijk"


def test_value_source_accepts_secretstr_and_repr_is_safe() -> None:
    """SecretStr input works; reprs show the fingerprint only."""
    src = ValueSource(SecretStr("sstr-key-1"))
    assert src.load().reveal() == "sstr-key-1"
    assert "sstr-key-1" not in repr(src)
    assert "sstr-key-1" not in repr(FileSource("/x"))


def test_quota_store_and_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """COINGUARD_BASE_URL and COINGUARD_QUOTA_STORE apply without an explicit Settings object."""
    monkeypatch.setenv("COINGUARD_BASE_URL", "https://other.example.com/v9")
    monkeypatch.setenv("COINGUARD_QUOTA_STORE", "memory")
    c = _client(provider="generic", read_key="read-key-r1-abcdefgh")
    assert str(c._core.base_url) == "https://other.example.com/v9"
    assert c._core.quota_store == "memory"
    c.get("/price")
    assert str(c.seen[0].url).startswith("https://other.example.com/v9/price")  # type: ignore[attr-defined]


def test_provider_retryable_statuses_join_the_policy() -> None:
    """A status the provider marks retryable is retried like the defaults."""
    provider = coinguard.Provider(name="p", base_url=BASE, retryable_statuses=frozenset({520}))
    c = coinguard.Client(provider=provider, read_key="read-key-r1-abcdefgh")
    assert 520 in c._core.retry.retry_statuses
    assert 503 in c._core.retry.retry_statuses
    c.close()


@pytest.mark.parametrize("value", [None, b"raw-bytes-key", 12345678])
def test_a_key_callable_returning_a_non_string_names_the_callable(value: object) -> None:
    """A callable returning None, bytes or an int gives a coinguard error naming the callable."""

    def get_my_key() -> object:
        return value

    client = _client(base_url=BASE, read_key=get_my_key)
    expected = MissingKeyError if value is None else ConfigurationError
    with pytest.raises(expected, match="get_my_key") as info:
        client.get("/price")
    assert not isinstance(info.value.__cause__, (AttributeError, TypeError))
    assert "raw-bytes-key" not in str(info.value)
    assert "12345678" not in str(info.value)


def test_an_unset_env_var_through_a_lambda_is_a_missing_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``lambda: os.environ.get("X")`` with X unset is a MissingKeyError, not AttributeError."""
    monkeypatch.delenv("CG_TEST_UNSET_VAR", raising=False)
    client = _client(base_url=BASE, read_key=lambda: os.environ.get("CG_TEST_UNSET_VAR"))
    with pytest.raises(MissingKeyError, match="lambda"):
        client.get("/price")
