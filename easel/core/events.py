"""The one event vocabulary from engine to batcher to job store to server-sent events.

`queued -> started -> progress* -> result | error | cancelled`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class EventType(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RESULT = "result"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (EventType.RESULT, EventType.ERROR, EventType.CANCELLED)


class Queued(BaseModel):
    type: Literal[EventType.QUEUED] = EventType.QUEUED
    position: int = Field(description="Requests ahead of this one; 0 = next.")
    request_id: str | None = None


class Started(BaseModel):
    type: Literal[EventType.STARTED] = EventType.STARTED
    batch_size: int = Field(1, description="Requests sharing this pipeline call.")


class Progress(BaseModel):
    type: Literal[EventType.PROGRESS] = EventType.PROGRESS
    step: int
    total: int
    preview: str | None = Field(None, description="Low-resolution PNG preview, base64.")


class Succeeded(BaseModel):
    type: Literal[EventType.RESULT] = EventType.RESULT
    result: dict[str, Any]


class Failed(BaseModel):
    type: Literal[EventType.ERROR] = EventType.ERROR
    error: dict[str, Any] = Field(description="{code, message, details?} as in error bodies.")
    status: int = 500


class Cancelled(BaseModel):
    type: Literal[EventType.CANCELLED] = EventType.CANCELLED
    reason: str = "cancelled"


Event = Annotated[
    Queued | Started | Progress | Succeeded | Failed | Cancelled, Field(discriminator="type")
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def is_terminal(event: Event) -> bool:
    return EventType(event.type).is_terminal


def sse_fields(event: Event, event_id: int | None = None) -> dict[str, str]:
    """The event as server-sent event fields: `event` names the type, `data` is JSON."""
    fields = {"event": str(event.type), "data": json.dumps(event.model_dump(mode="json"))}
    if event_id is not None:
        fields["id"] = str(event_id)
    return fields
