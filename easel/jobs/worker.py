"""The worker: claims jobs and runs them through the generation service's stream.

The GPU stays owned by the generation service (its batching applies to jobs too); the
worker only relays. While a job runs it heartbeats; a cancel requested through the store
is carried out by closing the stream, which the generation service sees as a disconnect
and stops at the next step. Failures that would happen again fail the job; transient ones
go back to the queue until attempts run out (easel/jobs/failures.py decides which); through
an outage of generation the job waits, on the same attempt (easel/jobs/outage.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from easel.core.clients import calling_as
from easel.core.events import (
    GENERATION_EVENT_ADAPTER,
    Cancelled,
    ErrorBody,
    Failed,
    GenerationEvent,
    GenerationLoading,
    GenerationQueued,
    GenerationStarted,
    JobCancelled,
    JobEnd,
    JobEvent,
    JobFailed,
    JobSucceeded,
    JobWaiting,
    Loading,
    Progress,
    Queued,
    Started,
    Succeeded,
)
from easel.core.identity import ApiScope, Caller
from easel.core.image_store import ImageStore
from easel.core.request_context import service_scope
from easel.jobs.cancelling import stop_if_cancelled
from easel.jobs.context import job_context
from easel.jobs.failures import AttemptFailed, FailureClass, classify, unreachable
from easel.jobs.job_log import job_ended, job_started
from easel.jobs.models import Job
from easel.jobs.outage import OutageWait, probe, retry_after_of
from easel.jobs.reporter import JobReporter, Notify
from easel.jobs.store.base import JobStore, moved_event, started_event

log = logging.getLogger("easel.jobs.worker")
WORKER_SERVICE = "worker"  # the `service` of its log lines


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 1
    heartbeat_s: float = 2.0
    visibility_timeout_s: float = 30.0
    # An idle worker's longest wait between looks at the store: what the store can tell
    # of (a submit, a retry coming due) ends the wait sooner.
    poll_interval_s: float = 1.0
    retry_backoff_s: float = 2.0
    # Waiting out an outage of generation: seconds between health polls, most seconds of
    # waiting in one attempt.
    health_poll_s: float = 1.0
    outage_window_s: float = 300.0


def job_caller(job: Job) -> Caller:
    """Whom the worker's calls to generation are for: the job's owner. The job records
    its owner's name only; generating is all a job needs to be allowed."""
    return Caller(name=job.owner, scopes=frozenset({ApiScope.GENERATE}))


class _Stop(Exception):
    """The worker must stop the job: cancel requested, or ownership lost."""


class Worker:
    def __init__(
        self,
        *,
        store: JobStore,
        results: ImageStore,
        generation: httpx.AsyncClient,
        config: WorkerConfig,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.time,
        notify: Notify | None = None,
    ) -> None:
        self.store = store
        self.results = results
        self.generation = generation
        self.config = config
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.notify = notify
        self.running: set[asyncio.Task[None]] = set()
        self.stopping = False

    # ---- loops -------------------------------------------------------------------------
    async def run(self) -> None:
        """Claim and run jobs until cancelled."""
        last_recovery = 0.0
        try:
            while True:
                stop_if_cancelled()
                now = self.clock()
                if now - last_recovery >= self.config.heartbeat_s:
                    await self.recover()
                    await self.say_alive(now)
                    last_recovery = now
                # No wait outlasts the next recovery and sign of life.
                until_recovery = max(0.0, last_recovery + self.config.heartbeat_s - now)
                if len(self.running) >= self.config.concurrency:
                    # Full: wake as soon as a job ends, to claim the next without delay.
                    await asyncio.wait(
                        self.running, timeout=until_recovery, return_when=asyncio.FIRST_COMPLETED
                    )
                elif not await self._start_one():
                    wait_s = min(self.config.poll_interval_s, until_recovery)
                    await self.store.wait_for_work(wait_s)
        finally:
            self.stopping = True  # jobs ending now claim no successor
            for task in list(self.running):
                task.cancel()
            await asyncio.gather(*self.running, return_exceptions=True)
            with contextlib.suppress(Exception):  # else it is forgotten after a while
                await self.store.worker_gone(self.worker_id)

    async def run_until_idle(self) -> None:
        """Run jobs until none is queued or running here (tests, scripts)."""
        while await self._start_one() or self.running:
            await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)

    async def recover(self) -> None:
        await recover_stale(
            self.store,
            now=self.clock(),
            visibility_timeout=self.config.visibility_timeout_s,
            notify=self.notify,
        )

    async def say_alive(self, now: float) -> None:
        """Counted as live by the job manager until `visibility_timeout_s` without this:
        the time after which its jobs are taken as lost too."""
        await self.store.worker_seen(
            self.worker_id, now=now, forget_before=now - self.config.visibility_timeout_s
        )

    async def _start_one(self) -> bool:
        job = await self.store.claim(self.worker_id, now=self.clock())
        if job is None:
            return False
        task = asyncio.create_task(self.process(job))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return True

    # ---- one job -----------------------------------------------------------------------
    async def process(self, job: Job) -> None:
        """Run `job`, then each job claimed by the previous one's finish, until none is."""
        next_job: Job | None = job
        while next_job is not None:
            next_job = await self._process_one(next_job)

    async def _process_one(self, job: Job) -> Job | None:
        # Its log lines and calls (generation, webhooks) continue the submit's trace.
        with service_scope(WORKER_SERVICE), job_context(job):
            return await self._run_one(job)

    async def _run_one(self, job: Job) -> Job | None:
        if self.notify is not None:  # the claim logged the event already
            await self.notify(job, started_event(job))
        report = JobReporter(
            store=self.store, job=job, worker_id=self.worker_id, notify=self.notify
        )
        started = job_started(job, worker_id=self.worker_id)
        try:
            with calling_as(job_caller(job)):  # generation sees whose job it runs
                await self._supervise(report)
        finally:
            report.close()
            job_ended(job, outcome=report.outcome or "requeued or stopped", started=started)
        return report.next_job

    async def _supervise(self, report: JobReporter) -> None:
        job = report.job
        relay = asyncio.create_task(self._relay(report))
        watch = asyncio.create_task(self._watch(job))
        try:
            async with asyncio.timeout(job.timeout_s):
                await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The worker stops (its app shuts down): close the stream now, and take the
            # relay's end, which nobody would read otherwise.
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await relay
            raise
        except TimeoutError:
            relay.cancel()  # closes the stream: the generation service stops the call
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await relay
            late = {"code": "timeout", "message": f"the job ran past {job.timeout_s:g} s"}
            await self._finish(report, JobFailed(error=late))
            return
        finally:
            watch.cancel()
        if not relay.done():  # the watcher stopped it: cancel requested or ownership lost
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            reason = watch.result() if watch.done() and not watch.cancelled() else None
            if reason == "cancel":
                await self._finish(report, JobCancelled())
            return
        try:
            relay.result()
        except AttemptFailed as failure:
            if failure.kind is FailureClass.PERMANENT:
                await self._finish(report, JobFailed(error=failure.error))
            else:
                error = {"code": "upstream_failed", "message": str(failure)}
                await self._retry(report, error, retry_after=failure.retry_after)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            broke = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
            await self._finish(report, JobFailed(error=broke))

    async def _watch(self, job: Job) -> str:
        """Heartbeat; return "cancel" or "lost" when the job must stop."""
        while True:
            stop_if_cancelled()
            await asyncio.sleep(self.config.heartbeat_s)
            current = await self.store.heartbeat(job.id, self.worker_id, now=self.clock())
            if current is None:
                return "lost"
            if current.cancel_requested:
                return "cancel"

    async def _relay(self, report: JobReporter) -> None:
        """Run the job through the generation stream; through an outage of generation (or
        its engine), wait for it to be back and run it again, on the same attempt."""
        outage = OutageWait(
            self.generation,
            poll_s=self.config.health_poll_s,
            window_s=self.config.outage_window_s,
        )
        while True:
            try:
                await self._stream(report)
                return
            except AttemptFailed as failure:
                if failure.kind is not FailureClass.OUTAGE:
                    raise
                await self._wait_out(report, failure, outage)

    async def _wait_out(
        self, report: JobReporter, failure: AttemptFailed, outage: OutageWait
    ) -> None:
        """Return once generation is back; raise when it is not an outage after all, or
        when it lasts past the window."""
        health = await probe(self.generation)
        if health.healthy:  # it answers and can generate: a failure of this job's own
            raise AttemptFailed(str(failure), retry_after=failure.retry_after) from failure
        retry_after = max(failure.retry_after or 0.0, health.retry_after or 0.0) or None
        log.warning("job %s waits for the generation service: %s", report.job.id, failure)
        report.wait(JobWaiting(error=failure.error, retry_after=retry_after), since=self.clock())
        if not await outage.until_back(retry_after):
            window = self.config.outage_window_s
            message = f"the generation service stayed unavailable for {window:g} s: {failure}"
            error = {"code": "generation_unavailable", "message": message}
            raise AttemptFailed(message, kind=FailureClass.PERMANENT, error=error) from failure
        log.info("job %s goes on: the generation service is back", report.job.id)
        report.resume()

    async def _stream(self, report: JobReporter) -> None:
        job = report.job
        try:
            async with self.generation.stream(
                "POST",
                "/api/generate/stream",
                # The images come back inline whatever the job asked: the worker stores
                # them itself, and the job's result gives links (`output: "url"`) or
                # bytes when read. Generation may write to another disk than this one.
                json={**job.request, "output": "base64"},
                headers={"X-Request-ID": job.id},
                timeout=httpx.Timeout(job.timeout_s, connect=10),
            ) as response:
                if response.status_code != 200:
                    await self._refused(report, response)
                    return
                async for sse in EventSource(response).aiter_sse():
                    # An event without data is not dispatched (the SSE rule; httpx-sse
                    # yields one for a block holding only `id:` or `retry:`).
                    if sse.data and await self._on_event(report, _parse(sse.data)):
                        return
        except httpx.HTTPError as exc:
            message = f"generation service unreachable or broke off: {exc!r}"
            raise unreachable(message) from exc
        raise unreachable("the generation stream ended without a result")

    async def _refused(self, report: JobReporter, response: httpx.Response) -> None:
        body = await response.aread()
        try:
            error = dict(json.loads(body)["error"])
        except (ValueError, KeyError, TypeError):
            error = {"code": "upstream_error", "message": body[:500].decode(errors="replace")}
        error["status"] = response.status_code
        kind = classify(response.status_code, error)
        if kind.retried:
            raise AttemptFailed(
                f"generation answered {response.status_code}: {error}",
                kind=kind,
                error=error,
                retry_after=retry_after_of(response.headers),
            )
        await self._finish(report, JobFailed(error=error))

    async def _on_event(self, report: JobReporter, event: GenerationEvent) -> bool:
        """Record one generation event in the job's log; True once the job has ended."""
        match event:
            case Progress(step=step, total=total):
                report.add(event, progress=(step, total))
            case Queued() | Loading() | Started():  # the generation service's, named apart
                report.add(_relayed(event))
            case Succeeded(result=result):
                stored = await run_in_threadpool(self._store_images, result)
                await self._finish(report, JobSucceeded(result=stored))
                return True
            case Failed(error=error, status=status, retry_after=retry_after):
                kind = classify(status, error)
                if kind.retried:
                    raise AttemptFailed(
                        f"generation failed: {error}",
                        kind=kind,
                        error={**error, "status": status},
                        retry_after=retry_after,
                    )
                await self._finish(report, JobFailed(error={**error, "status": status}))
                return True
            case Cancelled():
                await self._finish(report, JobCancelled())
                return True
        return False

    def _store_images(self, result: dict[str, Any]) -> dict[str, Any]:
        images = []
        for image in result.get("images", []):
            digest = self.results.save(base64.b64decode(image["image"]))
            images.append({k: v for k, v in image.items() if k != "image"} | {"sha256": digest})
        return {**result, "images": images}

    # ---- endings -----------------------------------------------------------------------
    async def _finish(self, report: JobReporter, event: JobEnd) -> None:
        # A worker that goes on claims its next job in the same step as this finish.
        owned = await report.finish(event, now=self.clock(), claim_next=not self.stopping)
        if not owned:
            log.warning("job %s was taken from this worker; its outcome is dropped", report.job.id)

    async def _retry(
        self, report: JobReporter, error: ErrorBody, *, retry_after: float | None = None
    ) -> None:
        await report.flush()  # this attempt's events come before the requeue's
        job, now = report.job, self.clock()
        backoff = self.config.retry_backoff_s * 2 ** max(0, job.attempts - 1)
        backoff = max(backoff, retry_after or 0.0)  # never sooner than generation asked
        after = await self.store.retry(
            job.id, self.worker_id, now=now, not_before=now + backoff, error=error
        )
        if after is not None:
            await self._event(job, moved_event(after))

    async def _event(self, job: Job, event: JobEvent) -> None:
        await self.store.append(job.id, event)
        if self.notify is not None:
            await self.notify(job, event)


async def recover_stale(
    store: JobStore, *, now: float, visibility_timeout: float, notify: Notify | None = None
) -> None:
    """Requeue (or end) jobs whose worker stopped heartbeating, and say so in their logs."""
    for job in await store.recover(now=now, visibility_timeout=visibility_timeout):
        log.warning("job %s lost its worker: now %s", job.id, job.status)
        event = moved_event(job)
        await store.append(job.id, event)
        if notify is not None:
            await notify(job, event)


def _parse(data: str) -> GenerationEvent:
    try:
        return GENERATION_EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:  # a broken or foreign stream: another attempt may do
        raise AttemptFailed(
            f"the generation stream sent what is not an event: {data[:200]!r}"
        ) from exc


def _relayed(
    event: Queued | Loading | Started,
) -> GenerationQueued | GenerationLoading | GenerationStarted:
    """The generation service's `queued`/`loading`/`started` as the job's log names them."""
    if isinstance(event, Queued):
        return GenerationQueued(position=event.position, request_id=event.request_id)
    if isinstance(event, Loading):
        return GenerationLoading(model=event.model)
    return GenerationStarted(batch_size=event.batch_size, batch_requests=event.batch_requests)
