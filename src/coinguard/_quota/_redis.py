"""Redis quota store: several machines sharing one budget, decided by one atomic Lua script."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from .._exceptions import ConfigurationError, QuotaExceededError
from .._redact import masked_url
from ._counter import DecayingCounter
from ._log import Snapshot, Sync
from ._policy import WindowSpec

__all__ = ["RedisStore"]

_SCRIPT = files(__package__).joinpath("_redis_script.lua").read_text(encoding="utf-8")
# Lua numbers are doubles: exact up to 2**53, far above a millisecond clock.
_NONCE = """
local value = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
local floor = tonumber(ARGV[1])
if floor > value then value = floor end
redis.call('SET', KEYS[1], string.format('%.0f', value))
return string.format('%.0f', value)
"""
# The decaying counter's one step (``_counter.admit``), atomic: KEYS[1] holds ``tat``;
# ARGV: op ("take", "fill" or "level"), now ("" for TIME), ceiling, rate, cost, max_wait, limit.
_COUNTER = """
local now = tonumber(ARGV[2])
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local ceiling, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[1] == 'level' then
  return {'1', string.format('%.17g', math.max(0, tat - now) * rate), string.format('%.17g', now)}
end
if ARGV[1] == 'fill' then
  local full = now + tonumber(ARGV[7]) / rate
  if full > tat then redis.call('SET', KEYS[1], string.format('%.17g', full)) end
  return {'1', '0', string.format('%.17g', now)}
end
local cost = tonumber(ARGV[5])
local at = math.max(now, tat - (ceiling - cost) / rate)
if at - now > tonumber(ARGV[6]) then
  return {'0', string.format('%.17g', at), string.format('%.17g', now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', math.max(tat, at) + cost / rate))
return {'1', string.format('%.17g', at), string.format('%.17g', now)}
"""


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ConfigurationError(
            "the redis quota store needs redis-py: pip install 'coinguard[redis]'"
        ) from None
    return redis


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """Quota state in Redis, shared by every process and machine that uses the same server.

    Each reserve, sync and status is one ``EVALSHA`` of one Lua script (reloaded
    automatically after ``SCRIPT FLUSH``), so the decision is atomic across clients. The
    script reads the clock with Redis ``TIME``, so machines need not agree on the time;
    ``server_clock=False`` uses the caller's clock instead (for tests). Keys expire once
    nothing in them counts any more.

    >>> store = RedisStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | Any = "redis://127.0.0.1:6379/0",
        *,
        server_clock: bool = True,
        prefix: str = "coinguard:quota:",
    ) -> None:
        if isinstance(url, str):
            redis = _import_redis()
            try:
                client = redis.Redis.from_url(url)
            except ValueError:
                client = None
            if client is None:
                raise ConfigurationError(f"bad redis URL {masked_url(url)!r}")
            self._client = client
        else:
            self._client = url
        self._server_clock = server_clock
        self._prefix = prefix
        self._script = self._client.register_script(_SCRIPT)
        self._nonce = self._client.register_script(_NONCE)
        self._counter = self._client.register_script(_COUNTER)

    @property
    def blocking(self) -> bool:
        """Every call is a network round trip."""
        return True

    @property
    def client(self) -> Any:
        """The redis-py client."""
        return self._client

    def bind(self, key_id: str, specs: tuple[WindowSpec, ...]) -> RedisBucket:
        """The bucket of ``key_id`` with these windows."""
        # a hash tag keeps all keys of one quota in one cluster slot
        tag = "{" + key_id.replace("{", "(").replace("}", ")") + "}"
        keys = [f"{self._prefix}{tag}:meta"]
        args: list[str | int | float] = [len(specs)]
        for spec in specs:
            base = f"{self._prefix}{tag}:{spec.sig}"
            keys += [base, f"{base}:sum", f"{base}:cum"]
            args += [spec.kind, spec.limit, repr(spec.length), repr(spec.margin), spec.name]
        return RedisBucket(self, keys, args)

    def next_nonce(self, key_id: str, floor: int) -> int:
        """The next nonce of ``key_id``: above every nonce this server gave out, and at least
        ``floor``; one script, atomic across every machine sharing the server."""
        key = f"{self._prefix}nonce:{{{key_id.replace('{', '(').replace('}', ')')}}}"
        return int(_text(self._nonce(keys=[key], args=[floor])))

    def _counter_op(
        self, op: str, key_id: str, counter: DecayingCounter, cost: int, now: float, wait: float
    ) -> tuple[bool, float, float]:
        key = f"{self._prefix}counter:{{{key_id.replace('{', '(').replace('}', ')')}}}"
        args = [op, self.now_arg(now), repr(counter.ceiling), repr(counter.rate), cost]
        ok, value, server_now = self._counter(keys=[key], args=[*args, repr(wait), counter.limit])
        return _text(ok) == "1", float(_text(value)), float(_text(server_now))

    def counter_take(
        self, key_id: str, counter: DecayingCounter, cost: int, now: float, max_wait: float
    ) -> tuple[float, float]:
        """Admit ``cost`` on the decaying counter of ``key_id``: one script, atomic across
        machines, on the server's clock (see ``_counter``)."""
        ok, at, server_now = self._counter_op("take", key_id, counter, cost, now, max_wait)
        if not ok:
            raise QuotaExceededError(
                f"the decaying counter is full for {at - server_now:.3f}s",
                window="counter",
                retry_after=at - server_now,
            )
        return at, server_now

    def counter_fill(self, key_id: str, counter: DecayingCounter, now: float) -> None:
        """Count the counter of ``key_id`` full from now (the provider said it is)."""
        self._counter_op("fill", key_id, counter, 0, now, 0.0)

    def counter_level(self, key_id: str, counter: DecayingCounter, now: float) -> float:
        """What the counter of ``key_id`` holds now."""
        return self._counter_op("level", key_id, counter, 0, now, 0.0)[1]

    def run(self, keys: list[str], args: list[str | int | float]) -> list[str]:
        """Run the script; the reply as text."""
        return [_text(v) for v in self._script(keys=keys, args=args)]

    def now_arg(self, now: float) -> str:
        """The ``now`` argument of the script: empty for Redis ``TIME``."""
        return "" if self._server_clock else repr(now)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._client!r})"


class RedisBucket:
    """One key's windows in a :class:`RedisStore`."""

    def __init__(self, store: RedisStore, keys: list[str], args: list[str | int | float]) -> None:
        self._store = store
        self._keys = keys
        self._args = args

    def reserve(self, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Commit ``cost`` at the earliest admissible time; return ``(at, server now)``."""
        args = ["reserve", self._store.now_arg(now), *self._args, cost, repr(max_wait)]
        return self._admitted(self._store.run(self._keys, args))

    @staticmethod
    def _admitted(reply: list[str]) -> tuple[float, float]:
        ok, at, server_now, why = reply
        t, now = float(at), float(server_now)
        if ok != "1":
            raise QuotaExceededError(
                f"quota window {why} is full for {t - now:.3f}s", window=why, retry_after=t - now
            )
        return t, now

    def settle(self, at: float, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Re-check a reservation as the call leaves; re-admit it if it no longer fits."""
        args = ["settle", self._store.now_arg(now), *self._args, repr(at), cost, repr(max_wait)]
        return self._admitted(self._store.run(self._keys, args))

    def release(self, at: float, cost: int, now: float) -> None:
        """Give back a reservation whose call was never sent."""
        args = ["release", self._store.now_arg(now), *self._args, repr(at), cost]
        self._store.run(self._keys, args)

    def correct(self, at: float, cost: int, answered: float, now: float, lead: float = 0.0) -> None:
        """Recount a call answered late as arriving as late as its answer allows."""
        args = ["correct", self._store.now_arg(now), *self._args, repr(at), cost, repr(answered)]
        args.append(repr(lead))
        self._store.run(self._keys, args)

    def sync(self, sync: Sync, now: float) -> None:
        """Apply a server observation."""
        penalty = "" if sync.penalty is None else repr(sync.penalty)
        args: list[str | int | float] = ["sync", self._store.now_arg(now), *self._args]
        args += [penalty, sync.penalty_why, repr(sync.debit_at), len(sync.targets)]
        for index, used, reset in sync.targets:
            args += [index, used, "" if reset is None else repr(reset)]
        args.append(len(sync.debits))
        for index, debit in sync.debits:
            args += [index, debit]
        self._store.run(self._keys, args)

    def snapshot(self, now: float) -> Snapshot:
        """Read every window (one script call)."""
        reply = self._store.run(self._keys, ["status", self._store.now_arg(now), *self._args])
        windows = tuple(
            (int(reply[k]), float(reply[k + 1]) if reply[k + 1] else None)
            for k in range(3, len(reply), 2)
        )
        return Snapshot(windows, float(reply[1]), float(reply[0]), reply[2])
