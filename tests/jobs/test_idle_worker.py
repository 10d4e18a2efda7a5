"""An idle worker costs next to nothing, and still starts a job as soon as there is one.

It does not poll the store: a submit, a retry or a recovery wakes it, and a job backing
off ends its wait when due. Every test but the first waits with a poll far longer than
its deadline, so passing means something woke the worker, not its poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from easel.core.image_store import ImageStore
from easel.jobs.models import JobStatus
from easel.jobs.runtime import worker_config
from easel.jobs.settings import JobsSettings
from easel.jobs.store.base import JobStore
from easel.jobs.store.sqlite import SQLiteJobStore
from easel.jobs.worker import Worker, WorkerConfig
from tests.jobs.scripted_generation import ScriptedGeneration, result, sse
from tests.jobs.test_store_conformance import NOW, new_job, submit

T = TypeVar("T")
DEADLINE = 10.0  # generous: what is measured is that it happens, not how fast
NEVER = 3600.0  # a poll (and heartbeat) no test outlives


class CountingSQLiteStore(SQLiteJobStore):
    """The real SQLite store, counting the operations it runs on its database."""

    operations = 0

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        self.operations += 1
        return await super()._run(function, *args)


@asynccontextmanager
async def running_worker(
    store: JobStore,
    tmp_path: Path,
    config: WorkerConfig,
    prompts: int = 0,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Worker]:
    """A worker running on `store`, finishing jobs of prompt "x" (`prompts` of them)."""
    generation = ScriptedGeneration({"x": [[sse(result(7))] for _ in range(prompts)]})
    async with generation.client() as client:
        worker = Worker(
            store=store,
            results=ImageStore(tmp_path / "results"),
            generation=client,
            config=config,
            clock=clock,
        )
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def status_becomes(store: JobStore, job_id: str, status: JobStatus) -> None:
    async with asyncio.timeout(DEADLINE):
        while (job := await store.get(job_id)) is None or job.status is not status:
            await asyncio.sleep(0.02)


QUIET = WorkerConfig(poll_interval_s=NEVER, heartbeat_s=NEVER, retry_backoff_s=0)


async def test_an_idle_worker_makes_a_few_store_reads_a_second(tmp_path) -> None:
    store = await CountingSQLiteStore.open(tmp_path / "jobs.db")
    config = worker_config(JobsSettings(data_dir=tmp_path))  # the shipped defaults
    try:
        async with running_worker(store, tmp_path, config):
            await asyncio.sleep(0.2)  # started: its first recovery and sign of life
            before, started = store.operations, time.monotonic()
            await asyncio.sleep(1.5)
            reads, seconds = store.operations - before, time.monotonic() - started
        # Polling every 10 ms made ~150 here; a look a second and a heartbeat's two
        # operations every two seconds make about three.
        assert reads <= 3 * seconds + 2, f"{reads} store operations in {seconds:.1f} s idle"
    finally:
        await store.close()


async def test_a_job_submitted_in_the_same_process_starts_at_once(tmp_path) -> None:
    store = await SQLiteJobStore.open(tmp_path / "jobs.db")
    try:
        async with running_worker(store, tmp_path, QUIET, prompts=1):
            await asyncio.sleep(0.3)  # idle by now, waiting
            (job,) = await submit(store)
            await status_becomes(store, job.id, JobStatus.DONE)
    finally:
        await store.close()


async def test_a_job_submitted_by_another_process_starts_soon(tmp_path) -> None:
    """Another connection to the same file: what another process's submit looks like."""
    worker_side = await SQLiteJobStore.open(tmp_path / "jobs.db")
    submit_side = await SQLiteJobStore.open(tmp_path / "jobs.db")
    try:
        async with running_worker(worker_side, tmp_path, QUIET, prompts=2):
            await asyncio.sleep(0.3)
            for _ in range(2):  # and again once the first one's writes settled
                (job,) = await submit(submit_side)
                await status_becomes(submit_side, job.id, JobStatus.DONE)
                await asyncio.sleep(0.3)
    finally:
        await submit_side.close()
        await worker_side.close()


async def test_a_job_backing_off_starts_when_due(tmp_path) -> None:
    store = await SQLiteJobStore.open(tmp_path / "jobs.db")
    try:
        async with running_worker(store, tmp_path, QUIET, prompts=1):
            await asyncio.sleep(0.3)
            job = new_job(not_before=time.time() + 0.5, created_at=time.time())
            await store.submit(job, max_queued=10)  # wakes the worker: it finds it not due
            await status_becomes(store, job.id, JobStatus.DONE)
    finally:
        await store.close()


async def test_a_job_recovered_from_a_lost_worker_starts_at_once(tmp_path) -> None:
    store = await SQLiteJobStore.open(tmp_path / "jobs.db")
    try:
        (job,) = await submit(store)
        assert await store.claim("gone", now=NOW)  # a worker that died with it
        now = [NOW]
        async with running_worker(store, tmp_path, QUIET, prompts=1, clock=lambda: now[0]):
            await asyncio.sleep(0.3)
            # A minute later the job manager's maintenance (same process) finds it stale.
            now[0] += 60
            (recovered,) = await store.recover(now=now[0], visibility_timeout=30)
            assert recovered.status is JobStatus.QUEUED
            await status_becomes(store, job.id, JobStatus.DONE)
    finally:
        await store.close()


# ---- the stores' side, on every backend ---------------------------------------------------
async def test_a_submit_ends_the_wait_of_an_idle_worker(open_store) -> None:
    worker_side, submit_side = await open_store(), await open_store()
    for submitter in (worker_side, submit_side):  # this process's, another one's
        assert await worker_side.claim("w", now=NOW) is None
        waiting = asyncio.create_task(worker_side.wait_for_work(NEVER))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await submit(submitter)
        await asyncio.wait_for(waiting, DEADLINE)
        assert await worker_side.claim("w", now=NOW) is not None


async def test_a_submit_between_a_look_and_the_wait_is_not_slept_through(open_store) -> None:
    store = await open_store()
    assert await store.claim("w", now=NOW) is None
    await submit(store)
    await asyncio.wait_for(store.wait_for_work(NEVER), DEADLINE)


async def test_the_wait_ends_when_a_job_backing_off_comes_due(open_store) -> None:
    store = await open_store()
    (job,) = await submit(store, not_before=NOW + 0.5)
    started = time.monotonic()
    async with asyncio.timeout(DEADLINE):  # a worker's loop: look, wait, look again
        while (claimed := await store.claim("w", now=NOW + time.monotonic() - started)) is None:
            await store.wait_for_work(NEVER)  # (Redis: the submit's token ends one early)
    assert claimed.id == job.id


async def test_a_zero_poll_still_returns_at_once(open_store) -> None:
    """Deterministic runs (tests, scripts) poll with no delay."""
    store = await open_store()
    await asyncio.wait_for(store.wait_for_work(0), DEADLINE)
