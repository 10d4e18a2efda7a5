"""A call of the public API as data: what to send and how to read the answer. Both clients
build the same `Call`s and differ only in how they send them (see `transport.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

T = TypeVar("T")


def identity(body: Any) -> Any:
    return body


@dataclass(frozen=True)
class Call(Generic[T]):
    """`method path` with a JSON `body` (None values left out) and query `params`; `parse`
    turns the JSON answer into what the SDK method returns."""

    method: str
    path: str
    parse: Callable[[Any], T]
    body: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any] | None:
        if self.body is None:
            return None
        return {name: value for name, value in self.body.items() if value is not None}

    def query(self) -> dict[str, Any] | None:
        if self.params is None:
            return None
        return {name: value for name, value in self.params.items() if value is not None}


def segment(value: str) -> str:
    """A path segment from a caller's value (a task id, a model name), escaped."""
    return quote(value, safe="")
