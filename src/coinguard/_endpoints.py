"""Typed endpoints: what a provider module declares about each of its main read routes.

An :class:`Endpoint` is data, like the rest of a provider's form: its name, route, scope, cost,
parameters, response model, where the rows sit in the body and how it pages. The client turns
a call into a request and the answer into validated models; the paginator
(:mod:`coinguard._paging`) reads ``paging`` to walk pages and time ranges.

>>> from coinguard import get_provider
>>> ep = get_provider("tokenmetrics").endpoint("daily_ohlcv")
>>> ep.route, ep.model.__name__, ep.paging.style
('/daily-ohlcv', 'Candle', 'page')
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ._exceptions import ArgumentTypeError, ConfigurationError, ResponseDecodeError
from ._provider import Scope
from ._redact import redact

__all__ = ["Endpoint", "Endpoints", "Pager", "Param", "Response"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
Shape = Literal["list", "mapping", "arrays", "object"]


@dataclass(frozen=True)
class Param:
    """One query or path parameter of an endpoint (a ``{name}`` in the route is a path one).

    ``kind`` is checked before a request is built: a ``str`` parameter takes a string, a
    number or a date (sent as ``YYYY-MM-DD``); an ``int`` one an int (or a word the provider
    takes, such as CoinGecko's ``days="max"``); a list or an object is refused by name.
    """

    name: str
    kind: type = str
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class Pager:
    """How an endpoint pages.

    ``style`` is ``"page"`` (a page number from ``first``, ``limit_param`` rows a page),
    ``"offset"`` (a 1-based row offset, as CoinMarketCap's ``start``) or ``"none"`` (one call
    per time chunk). ``start_param``/``end_param`` name the time range parameters (dates as
    ``YYYY-MM-DD``) and ``max_span`` the longest range one call may ask for.
    """

    style: Literal["page", "offset", "none"] = "page"
    page_param: str = "page"
    limit_param: str = "limit"
    max_limit: int = 100
    first: int = 1
    start_param: str | None = None
    end_param: str | None = None
    max_span: timedelta | None = None
    total_at: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Endpoint:
    """One typed endpoint of a provider.

    ``rows`` is the path of the rows in the decoded body (``("data",)`` for an envelope);
    ``shape`` says what is there: a ``list`` of objects, a ``mapping`` from an id to an object
    (``key_field`` receives the id; ``value_field``, if set, the whole value), ``arrays`` of
    positional values named by ``columns``, or one ``object``. ``cost`` is the declared credits
    of one call (``cost_note`` when the provider bills by data points).
    """

    name: str
    route: str
    model: type[BaseModel]
    method: str = "GET"
    scope: Scope = Scope.READ
    cost: int = 1
    cost_note: str = ""
    params: tuple[Param, ...] = ()
    rows: tuple[str, ...] = ()
    shape: Shape = "list"
    key_field: str = "id"
    value_field: str | None = None
    columns: tuple[str, ...] = ()
    paging: Pager | None = None
    doc: str = ""
    _path_params: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_path_params", tuple(_PLACEHOLDER.findall(self.route)))

    def request(self, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path and query of one call with ``params``; a clear error for a wrong name.

        >>> from coinguard import get_provider
        >>> get_provider("coingecko").endpoint("ohlc").request({"id": "bitcoin", "days": 7})
        ('/coins/bitcoin/ohlc', {'vs_currency': 'usd', 'days': 7})
        """
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise ConfigurationError(
                f"endpoint {self.name!r} has no parameter {unknown[0]!r}; its parameters: {names}"
            )
        values = dict(self.defaults())
        values.update({k: v for k, v in params.items() if v is not None})
        missing = [p.name for p in self.params if p.required and p.name not in values]
        if missing:
            raise ConfigurationError(f"endpoint {self.name!r} needs the parameter {missing[0]!r}")
        for name, value in values.items():
            values[name] = self._checked(known[name], value)
        path = self.route
        for name in self._path_params:
            piece = str(values.pop(name))
            if not piece or "/" in piece or piece in (".", ".."):
                raise ConfigurationError(
                    f"endpoint {self.name!r}: {name}={piece[:40]!r} is not a path segment"
                )
            # encoded whole: a "?" or "#" in an id must not start a query or a fragment
            path = path.replace("{" + name + "}", quote(piece, safe=""))
        return path, values

    def _checked(self, param: Param, value: Any) -> Any:
        """``value`` if it is of the parameter's declared kind; a clear error naming the
        parameter otherwise, before anything is sent (a list would go out as its repr)."""
        kind = param.kind
        if kind is str:
            # ids and numbers have one text form; a date is sent as 'YYYY-MM-DD'
            if isinstance(value, date) and not isinstance(value, datetime):
                return value.isoformat()
            fits = isinstance(value, str | int | float) and not isinstance(value, bool)
            what = "a string (or a number, or a date)"
        elif kind is int:
            # a provider may take a word where it counts (CoinGecko's days="max")
            fits = isinstance(value, int | str) and not isinstance(value, bool)
            what = "an int"
        elif kind is float:
            fits = isinstance(value, int | float) and not isinstance(value, bool)
            what = "a number"
        else:
            fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            what = f"a {kind.__name__}"
        if not fits:
            raise ArgumentTypeError(
                f"endpoint {self.name!r}: the parameter {param.name!r} must be {what}, "
                f"got a {type(value).__name__}"
                + (" (join several with commas)" if isinstance(value, list | tuple | set) else "")
            )
        return value

    def defaults(self) -> dict[str, Any]:
        """The parameters the declaration gives a default."""
        return {p.name: p.default for p in self.params if p.default is not None}

    def parse(self, body: Any) -> list[Any]:
        """The rows of a decoded body as validated models (one for an ``object`` endpoint)."""
        data = body
        for key in self.rows:
            data = data.get(key) if isinstance(data, Mapping) else None
        try:
            return [self.model.model_validate(item) for item in self._items(data)]
        except ValidationError as exc:
            # the message names fields and types, never values (a body may echo anything)
            where = "; ".join(
                ".".join(str(part) for part in err["loc"]) + f": {err['msg']}"
                for err in exc.errors(include_input=False)[:3]
            )
            raise ResponseDecodeError(
                f"{self.method} {self.route}: the answer does not fit {self.model.__name__} "
                f"({where})",
                status_code=200,
                content_type="application/json",
            ) from None

    def _items(self, data: Any) -> Iterator[Any]:
        if self.shape == "object":
            yield data
        elif self.shape == "mapping":
            for key, value in self._expect(data, Mapping, "a mapping of rows", {}).items():
                if self.value_field is not None:
                    yield {self.key_field: key, self.value_field: value}
                else:
                    yield {self.key_field: key, **self._expect(value, Mapping, "an object")}
        elif self.shape == "arrays":
            for row in self._expect(data, list, "a list of arrays", []):
                yield dict(zip(self.columns, self._expect(row, list, "an array"), strict=False))
        else:
            yield from self._expect(data, list, "a list of rows")

    def _expect(self, data: Any, kind: type, what: str, empty: Any = None) -> Any:
        """``data`` if it is a ``kind`` (``empty`` for None, when given); a body of the wrong
        shape is a decode error that says where, never a raw TypeError from inside."""
        if data is None and empty is not None:
            return empty
        if not isinstance(data, kind):
            raise ResponseDecodeError(
                f"{self.method} {self.route}: expected {what} at "
                f"{'.'.join(self.rows) or 'the top'}, got {type(data).__name__}",
                status_code=200,
                content_type="application/json",
            )
        return data

    def describe(self) -> str:
        """One line: name, route, scope, cost and parameters."""
        params = ", ".join(p.name + ("" if p.required else "?") for p in self.params)
        cost = self.cost_note or f"{self.cost} credit" + ("s" if self.cost != 1 else "")
        return (
            f"{self.name:<14} {self.method} {self.route:<28} {self.scope.value:<5} "
            f"{cost:<10} -> {self.model.__name__}({params})"
        )


class Endpoints(Mapping[str, Endpoint]):
    """The typed endpoints of a client's provider, by name; ``print()`` it for a table."""

    def __init__(self, provider: str, endpoints: tuple[Endpoint, ...]) -> None:
        self._provider = provider
        self._by_name = {ep.name: ep for ep in endpoints}

    def __getitem__(self, name: str) -> Endpoint:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name) or "none"
            raise ConfigurationError(
                f"provider {self._provider!r} declares no endpoint {name!r}; its endpoints: {known}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __str__(self) -> str:
        lines = [f"endpoints of {self._provider}"]
        lines += [ep.describe() for ep in self._by_name.values()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Endpoints({self._provider!r}, {list(self._by_name)})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True)
class Response:
    """An answer with its status and headers, from ``client.request(..., raw=True)``.

    ``headers`` are the response's headers, every name and value through
    :func:`coinguard.redact` (a server that echoes the key shows its fingerprint) and any
    ``set-cookie`` left out; ``body`` is the decoded JSON, as ``client.get()`` returns it.
    """

    status_code: int
    headers: httpx.Headers
    body: Any

    @classmethod
    def of(cls, response: httpx.Response, body: Any) -> Response:
        """From an httpx response and its decoded body."""
        headers = httpx.Headers(
            [(redact(k), redact(v)) for k, v in response.headers.items() if k != "set-cookie"]
        )
        return cls(response.status_code, headers, body)
