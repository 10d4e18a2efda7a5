"""The job record and its states."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from easel.core.identity import ANONYMOUS


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


WebhookEvent = Literal["started", "progress", "done", "failed", "cancelled"]


def _terminal_events() -> list[WebhookEvent]:
    return ["done", "failed", "cancelled"]


class WebhookSpec(BaseModel):
    """Where to POST a job's events (see easel/jobs/webhooks.py), and which of them."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    events: list[WebhookEvent] = Field(default_factory=_terminal_events, min_length=1)


class Waiting(BaseModel):
    """Why a running job is paused: its generation service or engine is unreachable."""

    since: float = Field(description="When the wait began (Unix seconds).")
    error: dict[str, Any] = Field(description="The failure that started it: {code, message}.")


class Job(BaseModel):
    """One persisted job. Times are Unix seconds (float)."""

    id: str
    status: JobStatus = JobStatus.QUEUED
    request: dict[str, Any]
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    max_attempts: int = 3
    timeout_s: float = 600.0
    progress_step: int = 0
    progress_total: int = 0
    worker_id: str | None = None
    heartbeat_at: float | None = None
    cancel_requested: bool = False
    not_before: float = 0.0  # a retried job waits until then (backoff)
    waiting: Waiting | None = None  # running, but waiting out an outage of generation
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    webhook: WebhookSpec | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    # The name of the API key that submitted it (`easel.core.identity`): only that key, or
    # an admin, sees it.
    owner: str = ANONYMOUS
    # The W3C trace context of the submitting request, continued by the worker's calls.
    traceparent: str | None = None
    tracestate: str | None = None
