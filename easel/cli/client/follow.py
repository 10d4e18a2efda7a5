"""Following a request to its end with a progress bar: a generation stream's events, or
a job's (the SDK's `wait`, which survives a dropped stream)."""

from __future__ import annotations

from typing import Any

from easel.cli.client.failures import ServerProblem
from easel.cli.client.progress import StepBar
from easel.client import Client, GenerationOutput
from easel.client.errors import error_class
from easel.core.events import (
    Cancelled,
    Failed,
    GenerationLoading,
    GenerationQueued,
    GenerationStarted,
    JobEvent,
    JobQueued,
    JobStarted,
    JobWaiting,
    Loading,
    Progress,
    Queued,
    Started,
    Succeeded,
)


def streamed(client: Client, prompt: str | None, fields: dict[str, Any]) -> GenerationOutput:
    """Generate through the stream, the bar fed by its events; the result, or the error
    the server ended the stream with, raised as the SDK raises error answers."""
    with StepBar("generating") as bar:
        for event in client.stream(prompt, **fields):
            if isinstance(event, Queued):
                bar.queued(event.position)
            elif isinstance(event, Started):
                bar.running()
            elif isinstance(event, Loading):
                bar.note(f"loading model {event.model}")
            elif isinstance(event, Progress):
                bar.step(event.step, event.total)
            elif isinstance(event, Succeeded):
                return client.output(event.result)
            elif isinstance(event, Failed):
                error = event.error
                raise error_class(event.status)(
                    event.status,
                    str(error.get("code", "error")),
                    str(error.get("message", "the generation failed")),
                    details=error.get("details"),
                    retry_after=event.retry_after,
                )
            elif isinstance(event, Cancelled):
                raise ServerProblem(f"the generation was cancelled ({event.reason})")
    raise ServerProblem("the server closed the stream before the result")


def waited(client: Client, task_id: str, max_wait: float | None) -> GenerationOutput:
    """Wait for a job with a bar: its queue position while queued (from its status),
    then its steps; the result, or the SDK's JobFailed / JobCancelled / WaitTimeout."""
    with StepBar(f"job {task_id[:12]}") as bar:

        def report(event: JobEvent) -> None:
            if isinstance(event, JobQueued):
                bar.queued(client.status(task_id).queue_position)
            elif isinstance(event, JobStarted | GenerationStarted):
                bar.running()
            elif isinstance(event, GenerationQueued):
                bar.note(f"in the generation queue ({event.position} ahead)")
            elif isinstance(event, GenerationLoading):
                bar.note(f"loading model {event.model}")
            elif isinstance(event, Progress):
                bar.step(event.step, event.total)
            elif isinstance(event, JobWaiting):
                bar.note(f"waiting for the generation service ({event.error.get('message')})")

        return client.wait(task_id, timeout=max_wait, on_progress=report)
