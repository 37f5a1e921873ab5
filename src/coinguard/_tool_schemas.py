"""The model-facing side of agent tools: input models built from endpoint declarations, their
strict-mode JSON Schema, and descriptions with units, formats and limits.

>>> from coinguard import get_provider
>>> model = endpoint_model(get_provider("tokenmetrics").endpoint("daily_ohlcv"))
>>> model.model_json_schema()["properties"]["startDate"]["anyOf"][0]["pattern"] == DAY
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ._endpoints import Endpoint

__all__ = ["DAY", "OhlcvInput", "PricesInput", "describe", "endpoint_model", "strict"]

DAY = r"^\d{4}-\d{2}-\d{2}$"
_SYMBOL = r"^[A-Za-z0-9._-]{1,20}$"


def _field_type(kind: type) -> Any:
    return int if kind is int else float if kind is float else str


def _param_field(endpoint: Endpoint, name: str) -> tuple[Any, Any]:
    param = next(p for p in endpoint.params if p.name == name)
    kind = _field_type(param.kind)
    extra: dict[str, Any] = {"description": param.doc or name}
    if "YYYY-MM-DD" in param.doc:
        extra["pattern"] = DAY
    pager = endpoint.paging
    if pager is not None and name == pager.limit_param:
        extra.update(ge=1, le=pager.max_limit)
        extra["description"] = f"rows per page, 1 to {pager.max_limit}"
    elif pager is not None and name == pager.page_param:
        extra.update(ge=pager.first)
    if param.required:
        return kind, Field(..., **extra)
    return kind | None, Field(param.default, **extra)


def endpoint_model(endpoint: Endpoint) -> type[BaseModel]:
    """The input model of an endpoint's tool: its parameters, no others."""
    fields = {p.name: _param_field(endpoint, p.name) for p in endpoint.params}
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{endpoint.name}_input", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


class PricesInput(BaseModel):
    """Arguments of the ``prices`` tool."""

    model_config = ConfigDict(extra="forbid")
    symbols: Annotated[
        list[Annotated[str, Field(pattern=_SYMBOL)]],
        Field(min_length=1, max_length=50, description="tickers, e.g. ['BTC', 'ETH']"),
    ]


class OhlcvInput(BaseModel):
    """Arguments of the ``ohlcv`` tool."""

    model_config = ConfigDict(extra="forbid")
    symbols: Annotated[
        list[Annotated[str, Field(pattern=_SYMBOL)]],
        Field(min_length=1, max_length=10, description="tickers, e.g. ['BTC', 'ETH']"),
    ]
    start: str = Field(..., pattern=DAY, description="first UTC day, YYYY-MM-DD")
    end: str | None = Field(
        None, pattern=DAY, description="last UTC day, YYYY-MM-DD, inclusive; null for today"
    )
    interval: Literal["1d", "1h"] | None = Field("1d", description="candle length: 1d or 1h")


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` in OpenAI strict mode: every property required, an optional one nullable."""
    out = dict(schema)
    props = {name: dict(prop) for name, prop in schema.get("properties", {}).items()}
    required = set(schema.get("required", []))
    for name, prop in props.items():
        prop.pop("default", None)
        if name not in required and not _nullable(prop):
            props[name] = {"anyOf": [prop, {"type": "null"}]}
    out["properties"] = props
    out["required"] = list(props)
    out["additionalProperties"] = False
    return out


def _nullable(prop: Mapping[str, Any]) -> bool:
    return any(alt.get("type") == "null" for alt in prop.get("anyOf", ()))


def describe(ep: Endpoint, provider: str) -> str:
    """What a model needs to call ``ep``: what it returns, its cost, pages and ranges."""
    cost = ep.cost_note or f"{ep.cost} credit{'s' if ep.cost != 1 else ''} per call"
    text = f"{ep.doc[:1].upper()}{ep.doc[1:]} from {provider} ({ep.method} {ep.route}); {cost}."
    if ep.paging is not None and ep.paging.style == "page":
        text += (
            f" One page per call: {ep.paging.limit_param} up to {ep.paging.max_limit} rows, "
            f"{ep.paging.page_param} from {ep.paging.first}."
        )
    if ep.paging is not None and ep.paging.max_span is not None:
        text += f" Ranges up to {ep.paging.max_span.days} days per call; times are UTC."
    return text
