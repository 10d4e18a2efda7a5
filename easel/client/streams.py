"""Server-sent events as the server's own typed events (`easel.core.events`): the
generation stream's `GenerationEvent` and a job log's `JobEvent`."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from httpx_sse import ServerSentEvent
from pydantic import TypeAdapter, ValidationError

from easel.core.events import (
    GENERATION_EVENT_ADAPTER,
    JOB_EVENT_ADAPTER,
    EventType,
    GenerationEvent,
    JobEvent,
)

E = TypeVar("E")
_KNOWN_TYPES = frozenset(EventType)


def _parse(adapter: TypeAdapter[E], sse: ServerSentEvent) -> E | None:
    """The event, or None for one this SDK does not know (a newer server's: skipped, so
    that a server adding an event type does not break older clients)."""
    if not sse.data:
        return None
    data: Any = json.loads(sse.data)
    try:
        return adapter.validate_python(data)
    except ValidationError:
        if isinstance(data, dict) and data.get("type") not in _KNOWN_TYPES:
            return None
        raise


def generation_event(sse: ServerSentEvent) -> GenerationEvent | None:
    return _parse(GENERATION_EVENT_ADAPTER, sse)


def job_event(sse: ServerSentEvent) -> JobEvent | None:
    return _parse(JOB_EVENT_ADAPTER, sse)


def event_id(sse: ServerSentEvent) -> int | None:
    """The event's id in the job log (for `Last-Event-ID` on a reconnect)."""
    try:
        return int(sse.id) if sse.id else None
    except ValueError:
        return None
