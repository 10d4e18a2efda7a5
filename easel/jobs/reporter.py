"""A running job's reports to the store: written behind the relay, and coalesced.

The generation stream can deliver several events at once (its own `queued` and `started`,
then a progress event per step). Waiting for the store after each one would cost a round
trip per event, and on a busy worker the round trips are most of a job's cost. Instead the
relay hands each event over and reads on; one writer task per job sends everything that
gathered meanwhile as a single `JobStore.report`, in order. A write never waits behind
another: the first event of a quiet stream goes out at once. Whatever is still gathered
when the job ends rides along with its `finish`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from easel.core.events import JobEnd, JobEvent, JobWaiting
from easel.jobs.models import Job, Waiting
from easel.jobs.store.base import Ending, JobStore, Report, ending_of

# Told of each event appended to a job's log (webhooks); must return at once.
Notify = Callable[[Job, JobEvent], Awaitable[None]]


class JobReporter:
    """Writes one job's events and progress for the worker that owns it."""

    def __init__(self, *, store: JobStore, job: Job, worker_id: str, notify: Notify | None) -> None:
        self.store = store
        self.job = job
        self.worker_id = worker_id
        self.notify = notify
        self._events: list[JobEvent] = []
        self._progress: tuple[int, int] | None = None
        self._waiting: tuple[Waiting | None] | None = None  # (the new value,) if it changed
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.outcome: str | None = None  # the status `finish` ended the job with
        self.next_job: Job | None = None  # claimed by `finish(claim_next=True)`

    def add(self, event: JobEvent, *, progress: tuple[int, int] | None = None) -> None:
        """Queue `event` (and the job's `progress`, step and total) for the store. Raises
        the store's error if the last write failed, as a direct write would have."""
        self._raise_failed_write()
        self._events.append(event)
        if progress is not None:
            self._progress = progress
        self._write_soon()

    def wait(self, event: JobWaiting, *, since: float) -> None:
        """Log `event` and mark the job as waiting out an outage (since `since`)."""
        self._raise_failed_write()
        self._waiting = (Waiting(since=since, error=event.error),)
        self.add(event)

    def resume(self) -> None:
        """The job no longer waits (see `wait`)."""
        self._raise_failed_write()
        self._waiting = (None,)
        self._write_soon()

    def _raise_failed_write(self) -> None:
        if self._writer is not None and self._writer.done():
            failed, self._writer = self._writer, None
            failed.result()

    def _write_soon(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_gathered())

    def _take(self) -> Report | None:
        """What gathered since the last write, as one report (None: nothing)."""
        if not self._events and self._progress is None and self._waiting is None:
            return None
        report: Report = {"events": self._events, "progress": self._progress}
        if self._waiting is not None:
            report["waiting"] = self._waiting[0]
        self._events, self._progress, self._waiting = [], None, None
        return report

    async def _write(self, report: Report) -> None:
        owned = await self.store.report(self.job.id, self.worker_id, **report)
        await self._notify(list(report["events"]), owned=owned)

    async def _write_gathered(self) -> None:
        while not self._closing and (report := self._take()) is not None:
            await self._write(report)

    async def _settle(self) -> Report | None:
        """Let the write in flight land; take what gathered behind it."""
        self._closing = True
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                await writer  # a failed write raises here, once
        finally:
            self._closing = False
        return self._take()

    async def flush(self) -> None:
        """Write everything gathered so far, and wait for it."""
        report = await self._settle()
        if report is not None:
            await self._write(report)

    async def finish(self, event: JobEnd, *, now: float, claim_next: bool = False) -> bool:
        """End the job as the terminal `event` says (its status, result or error), with
        the events still gathered logged before it; False when the worker no longer owns
        it (nothing written). With `claim_next`, the worker's next job is claimed in the
        same step and left in `next_job`."""
        gathered = await self._settle()
        events: list[JobEvent] = [*(gathered["events"] if gathered else ()), event]
        ending: Ending = {
            **ending_of(event, now=now),
            "events": events,
            "progress": gathered["progress"] if gathered else None,
        }
        self.outcome = ending["status"].value
        if claim_next:
            owned, self.next_job = await self.store.finish_and_claim(
                self.job.id, self.worker_id, **ending
            )
        else:
            owned = await self.store.finish(self.job.id, self.worker_id, **ending)
        await self._notify(events, owned=owned)
        return owned

    def close(self) -> None:
        """Stop a write still in flight (the worker is stopping the job's task)."""
        if self._writer is not None:
            self._writer.cancel()

    async def _notify(self, events: list[JobEvent], *, owned: bool) -> None:
        if owned and self.notify is not None:
            for event in events:
                await self.notify(self.job, event)
