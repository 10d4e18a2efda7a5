"""What a failed attempt says about the next one: the one place that decides retries.

Driven by what the generation service answers (the HTTP status of its error and the
error's `code`), or by the worker's own view when there is no answer at all:

- `PERMANENT`: it will fail the same way again (ComfyUI's `execution_error` of the same
  graph, invalid input found late, an internal error, any other 4xx): the job fails now;
- `TRANSIENT`: another attempt may pass (a timeout, an overloaded or misbehaving
  upstream, out of memory, a stream that could not be read): it uses an attempt;
- `OUTAGE`: the generation service or its engine cannot be reached (503, or no
  connection): the job waits for it to be healthy again without using an attempt
  (easel/jobs/outage.py).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from easel.core.events import ErrorBody

# The generation service's codes for failures that a new attempt would repeat, whatever
# their HTTP status (`workflow_failed` is a 502: ComfyUI ran the graph and it failed).
_REPEATS = frozenset({"workflow_failed", "invalid_input"})
_TRANSIENT_STATUSES = frozenset({408, 429, 502, 504})


class FailureClass(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    OUTAGE = "outage"

    @property
    def retried(self) -> bool:
        return self is not FailureClass.PERMANENT


def classify(status: int, error: ErrorBody) -> FailureClass:
    """The class of the generation service's answer `status` with its error body."""
    if status == 503:
        return FailureClass.OUTAGE
    if _out_of_memory(error):  # the same graph may fit once other work has freed memory
        return FailureClass.TRANSIENT
    if error.get("code") in _REPEATS:
        return FailureClass.PERMANENT
    if status in _TRANSIENT_STATUSES:
        return FailureClass.TRANSIENT
    return FailureClass.PERMANENT


def _out_of_memory(error: ErrorBody) -> bool:
    details: Any = error.get("details")
    kind = str(details.get("exception_type") or "") if isinstance(details, dict) else ""
    return "OutOfMemory" in kind or "out of memory" in str(error.get("message", "")).lower()


class AttemptFailed(Exception):
    """An attempt that ended without ending the job, and how: transient (another
    attempt), an outage (wait for generation), or permanent (failed, with `error`)."""

    def __init__(
        self,
        message: str,
        *,
        kind: FailureClass = FailureClass.TRANSIENT,
        error: ErrorBody | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.error = error or {"code": "upstream_failed", "message": message}
        self.retry_after = retry_after


def unreachable(message: str) -> AttemptFailed:
    """No answer from generation, or one cut off: an outage if its health agrees."""
    error = {"code": "generation_unreachable", "message": message}
    return AttemptFailed(message, kind=FailureClass.OUTAGE, error=error)
