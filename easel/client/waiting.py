"""Waiting for a job, the part both clients share: follow the job's event stream (resuming
after the last event seen), fall back to its status when the stream drops, report what
happens to `on_progress`, and turn the job's end into a result or an exception."""

from __future__ import annotations

import time
from collections.abc import Callable

from httpx_sse import ServerSentEvent

from easel.client.errors import JobCancelled, JobFailed, WaitTimeout
from easel.client.results import GenerationOutput, JobInfo
from easel.client.streams import event_id, job_event
from easel.core import events
from easel.core.events import ErrorBody, JobEvent, JobSucceeded, Progress

ProgressCallback = Callable[[JobEvent], object]
"""Called with each event of the job before its end (`Progress(step, total)` among them)."""

FIRST_POLL_DELAY = 0.25
MAX_POLL_DELAY = 2.0


def job_failed(task_id: str, error: ErrorBody | None) -> JobFailed:
    error = error or {}
    return JobFailed(
        int(error.get("status", 500)),
        str(error.get("code", "job_failed")),
        str(error.get("message", f"job {task_id} failed")),
        details=error.get("details"),
    )


class JobWatch:
    """One `wait`: its deadline, the last event id seen and the progress reported."""

    def __init__(
        self,
        task_id: str,
        *,
        timeout: float | None,
        on_progress: ProgressCallback | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task_id = task_id
        self.on_progress = on_progress
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout
        self._delay = FIRST_POLL_DELAY
        self._progress: tuple[int, int] | None = None
        self.last_event_id = 0

    def remaining(self) -> float | None:
        """Seconds left (None: no deadline); raises `WaitTimeout` once none are."""
        if self._deadline is None:
            return None
        left = self._deadline - self._clock()
        if left <= 0:
            raise WaitTimeout(f"job {self.task_id} did not end in time")
        return left

    def resume_headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.last_event_id)} if self.last_event_id else {}

    def see(self, sse: ServerSentEvent) -> GenerationOutput | None:
        """An event of the stream: the output at its end, None before it. A job that keeps
        reporting steps past the deadline is a `WaitTimeout` too, not only a silent one."""
        self.remaining()
        self.last_event_id = event_id(sse) or self.last_event_id
        event = job_event(sse)
        if event is None:
            return None
        if isinstance(event, JobSucceeded):
            return GenerationOutput({"task_id": self.task_id, **event.result})
        if isinstance(event, events.JobFailed):
            raise job_failed(self.task_id, event.error)
        if isinstance(event, events.JobCancelled):
            raise JobCancelled(f"job {self.task_id} was cancelled")
        if isinstance(event, Progress):
            self._progress = (event.step, event.total)
        self._report(event)
        return None

    def see_status(self, job: JobInfo) -> bool:
        """The job's status (read when the stream dropped): True once it is done; raises
        for any other end; reports progress the stream did not."""
        if job.status == "done":
            return True
        if job.status == "failed":
            raise job_failed(self.task_id, job.error)
        if job.is_terminal:
            raise JobCancelled(f"job {self.task_id} is {job.status}")
        if job.total and (job.step, job.total) != self._progress:
            self._progress = (job.step, job.total)
            self._report(Progress(step=job.step, total=job.total))
        return False

    def next_delay(self) -> float:
        """The pause before the stream is opened again, growing; within the deadline."""
        delay, self._delay = self._delay, min(self._delay * 2, MAX_POLL_DELAY)
        left = self.remaining()
        return delay if left is None else min(delay, left)

    def _report(self, event: JobEvent) -> None:
        if self.on_progress is not None:
            self.on_progress(event)
