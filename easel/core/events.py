"""The one event vocabulary from engine to batcher to job store to server-sent events.

Two streams speak it, each with its own union:

- the generation stream (`POST /api/generate/stream`, built by the batcher),
  `GenerationEvent`: `queued -> loading? -> started -> progress* -> result | error |
  cancelled` (`loading`: the call's model is not loaded and loads first);
- a job's log (the job store, `GET /api/generate/events/{id}`, webhooks), `JobEvent`: the
  job's own `queued -> started`, its generation stream relayed (`generation_queued`,
  `generation_loading`, `generation_started`, `progress`), then `result | error |
  cancelled`. A job retried
  after a transient failure goes back to `queued` (with `retry`) and starts again; one
  whose generation service or engine is unreachable logs `waiting` and, still running on
  the same attempt, goes on once it is back.

Every event's JSON names its type in `type`, first. Job events go to clients (and to the
stores) without null fields, as the job log has always written them (`job_event_data`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# An error as error bodies carry it: {code, message, details?}; a job's adds `status`.
ErrorBody = dict[str, Any]


class EventType(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RESULT = "result"
    ERROR = "error"
    CANCELLED = "cancelled"
    # The generation service's own queue and start, relayed into a job's log.
    GENERATION_QUEUED = "generation_queued"
    GENERATION_STARTED = "generation_started"
    # The request's model is not loaded: it loads before the call starts.
    LOADING = "loading"
    GENERATION_LOADING = "generation_loading"
    # A running job waiting for the generation service (or its engine) to be back.
    WAITING = "waiting"

    @property
    def is_terminal(self) -> bool:
        return self in (EventType.RESULT, EventType.ERROR, EventType.CANCELLED)


class BaseEvent(BaseModel):
    """Each event narrows `type` to its own member; declared here so that it comes first."""

    model_config = ConfigDict(frozen=True)

    type: EventType


# ---- shared parts -----------------------------------------------------------------------
class QueuePlace(BaseEvent):
    position: int = Field(description="Requests ahead of this one; 0 = next.")
    request_id: str | None = None


class CallShape(BaseEvent):
    batch_size: int = Field(1, description="Images the pipeline call generates (its batch).")
    # compat: None in `generation_started` events logged before it existed.
    batch_requests: int | None = Field(None, description="Requests sharing the pipeline call.")


class ModelLoad(BaseEvent):
    model: str = Field(description="The model that loads before the call starts.")


class Progress(BaseEvent):
    """A denoising step done; in both streams."""

    type: Literal[EventType.PROGRESS] = EventType.PROGRESS
    step: int
    total: int
    preview: str | None = Field(None, description="Low-resolution PNG preview, base64.")


# ---- the generation stream --------------------------------------------------------------
class Queued(QueuePlace):
    type: Literal[EventType.QUEUED] = EventType.QUEUED


class Loading(ModelLoad):
    type: Literal[EventType.LOADING] = EventType.LOADING


class Started(CallShape):
    type: Literal[EventType.STARTED] = EventType.STARTED


class Succeeded(BaseEvent):
    type: Literal[EventType.RESULT] = EventType.RESULT
    result: dict[str, Any]


class Failed(BaseEvent):
    """The request failed; `status` is the HTTP status its error maps to."""

    type: Literal[EventType.ERROR] = EventType.ERROR
    error: ErrorBody = Field(description="{code, message, details?} as in error bodies.")
    status: int = 500
    retry_after: float | None = Field(
        None, description="Seconds before trying again (the error's Retry-After), if said."
    )


class Cancelled(BaseEvent):
    type: Literal[EventType.CANCELLED] = EventType.CANCELLED
    reason: str = "cancelled"


GenerationEvent = Annotated[
    Queued | Loading | Started | Progress | Succeeded | Failed | Cancelled,
    Field(discriminator="type"),
]
GENERATION_EVENT_ADAPTER: TypeAdapter[GenerationEvent] = TypeAdapter(GenerationEvent)


# ---- a job's log ------------------------------------------------------------------------
class JobQueued(BaseEvent):
    """Submitted; or back in the queue after a transient failure (`retry`, with its error)."""

    type: Literal[EventType.QUEUED] = EventType.QUEUED
    status: Literal["queued"] = "queued"
    retry: bool | None = None
    error: ErrorBody | None = None


class JobStarted(BaseEvent):
    """A worker claimed the job: its `attempt`-th run (1 = the first)."""

    type: Literal[EventType.STARTED] = EventType.STARTED
    attempt: int


class GenerationQueued(QueuePlace):
    """The generation service's `queued`, relayed into the job's log."""

    type: Literal[EventType.GENERATION_QUEUED] = EventType.GENERATION_QUEUED


class GenerationStarted(CallShape):
    """The generation service's `started`, relayed into the job's log."""

    type: Literal[EventType.GENERATION_STARTED] = EventType.GENERATION_STARTED


class GenerationLoading(ModelLoad):
    """The generation service's `loading`, relayed into the job's log."""

    type: Literal[EventType.GENERATION_LOADING] = EventType.GENERATION_LOADING


class JobWaiting(BaseEvent):
    """The generation service or its engine is unreachable: the job waits for it to be
    healthy again (its attempt is not used up), then goes on."""

    type: Literal[EventType.WAITING] = EventType.WAITING
    error: ErrorBody = Field(description="{code, message, status?}: why it waits.")
    retry_after: float | None = Field(None, description="The generation service's Retry-After.")


class JobSucceeded(BaseEvent):
    """Done; the result's images are by reference (`sha256`) in the log."""

    type: Literal[EventType.RESULT] = EventType.RESULT
    status: Literal["done"] = "done"
    result: dict[str, Any]


class JobFailed(BaseEvent):
    """Failed for good; unlike the generation stream's `Failed`, `status` is the job's and
    the HTTP status, when there is one, is inside the error."""

    type: Literal[EventType.ERROR] = EventType.ERROR
    status: Literal["failed"] = "failed"
    error: ErrorBody = Field(description="{code, message, status?, details?}.")


class JobCancelled(BaseEvent):
    type: Literal[EventType.CANCELLED] = EventType.CANCELLED
    status: Literal["cancelled"] = "cancelled"


JobEnd = JobSucceeded | JobFailed | JobCancelled
JobEvent = Annotated[
    JobQueued
    | JobStarted
    | GenerationQueued
    | GenerationLoading
    | GenerationStarted
    | Progress
    | JobWaiting
    | JobSucceeded
    | JobFailed
    | JobCancelled,
    Field(discriminator="type"),
]
JOB_EVENT_ADAPTER: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)


# ---- predicates and wire forms ----------------------------------------------------------
def is_terminal(event: BaseEvent) -> bool:
    return event.type.is_terminal


def job_event_data(event: BaseEvent, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """A job event's JSON fields as clients get them: null fields left out."""
    return event.model_dump(mode="json", exclude_none=True, exclude=exclude)


def sse_fields(event: BaseEvent, event_id: int | None = None) -> dict[str, str]:
    """A generation stream event as server-sent event fields: `event` names the type,
    `data` is JSON (null fields included)."""
    return _sse(event, event.model_dump(mode="json"), event_id)


def job_sse_fields(event: BaseEvent, event_id: int) -> dict[str, str]:
    """A job log event as server-sent event fields, with its id in the log."""
    return _sse(event, job_event_data(event), event_id)


def _sse(event: BaseEvent, data: dict[str, Any], event_id: int | None) -> dict[str, str]:
    fields = {"event": str(event.type), "data": json.dumps(data)}
    if event_id is not None:
        fields["id"] = str(event_id)
    return fields
