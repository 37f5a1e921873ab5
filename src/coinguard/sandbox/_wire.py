"""The request and the answer as the sans-I/O app and the server shell exchange them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Action", "Reply", "Request"]

Action = Literal["respond", "reset", "drop"]


@dataclass(frozen=True)
class Request:
    """A request as the transport read it; header names lower-case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    oversized: bool = False


@dataclass(frozen=True)
class Reply:
    """What to do: answer (after ``delay`` seconds), reset the connection, or drop it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    action: Action = "respond"
    delay: float = 0.0
