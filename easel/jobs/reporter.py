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

from easel.core.events import JobEnd, JobEvent
from easel.jobs.models import Job
from easel.jobs.store.base import Ending, JobStore, ending_of

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
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.outcome: str | None = None  # the status `finish` ended the job with
        self.next_job: Job | None = None  # claimed by `finish(claim_next=True)`

    def add(self, event: JobEvent, *, progress: tuple[int, int] | None = None) -> None:
        """Queue `event` (and the job's `progress`, step and total) for the store. Raises
        the store's error if the last write failed, as a direct write would have."""
        if self._writer is not None and self._writer.done():
            failed, self._writer = self._writer, None
            failed.result()
        self._events.append(event)
        if progress is not None:
            self._progress = progress
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_gathered())

    async def _write_gathered(self) -> None:
        while self._events and not self._closing:
            events, progress = self._events, self._progress
            self._events, self._progress = [], None
            owned = await self.store.report(
                self.job.id, self.worker_id, events=events, progress=progress
            )
            await self._notify(events, owned=owned)

    async def _settle(self) -> tuple[list[JobEvent], tuple[int, int] | None]:
        """Let the write in flight land; take what gathered behind it."""
        self._closing = True
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                await writer  # a failed write raises here, once
        finally:
            self._closing = False
        gathered = self._events, self._progress
        self._events, self._progress = [], None
        return gathered

    async def flush(self) -> None:
        """Write everything gathered so far, and wait for it."""
        events, progress = await self._settle()
        if events or progress:
            owned = await self.store.report(
                self.job.id, self.worker_id, events=events, progress=progress
            )
            await self._notify(events, owned=owned)

    async def finish(self, event: JobEnd, *, now: float, claim_next: bool = False) -> bool:
        """End the job as the terminal `event` says (its status, result or error), with
        the events still gathered logged before it; False when the worker no longer owns
        it (nothing written). With `claim_next`, the worker's next job is claimed in the
        same step and left in `next_job`."""
        gathered, progress = await self._settle()
        events: list[JobEvent] = [*gathered, event]
        ending: Ending = {**ending_of(event, now=now), "events": events, "progress": progress}
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
