"""The queue ETA is recomputed at every read (item 15 of issue 16): from the job's place in
the queue, the running jobs' elapsed time, and how long comparable jobs took recently
(same model, mode, size and steps; coarser matches, then all recent jobs, when there are
none), over the workers known to be running. Time is an injected clock."""

from __future__ import annotations

import pytest

from easel.core.image_store import ImageStore
from easel.jobs.manager import JobLimits, JobManager
from easel.jobs.models import JobStatus
from tests.jobs.test_store_conformance import NOW, new_job

SMALL = {"prompt": "x", "steps": 4, "width": 512, "height": 512}
BIG = {"prompt": "x", "steps": 40, "width": 512, "height": 512}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture()
def manager(store, tmp_path, clock: Clock) -> JobManager:
    limits = JobLimits(max_queued=100, max_attempts=3, timeout_s=600, concurrency=1)
    return JobManager(
        store=store, results=ImageStore(tmp_path / "results"), limits=limits, clock=clock
    )


async def queue(store, request: dict) -> str:
    job = await store.submit(new_job(request=request), max_queued=100)
    return job.id


async def start(store, request: dict, *, at: float, worker: str = "w1") -> str:
    job_id = await queue(store, request)
    claimed = await store.claim(worker, now=at)
    assert claimed is not None and claimed.id == job_id
    return job_id


async def history(store, request: dict, *, took: float, count: int = 3) -> None:
    """`count` jobs like `request` that each ran `took` seconds, long ago."""
    for i in range(count):
        began = NOW - 10_000 + i * 100
        job_id = await start(store, request, at=began, worker="old")
        done = await store.finish(
            job_id, "old", status=JobStatus.DONE, now=began + took, result={"images": []}
        )
        assert done


async def eta(manager: JobManager, job_id: str) -> float | None:
    return (await manager.status(job_id)).eta_s


async def test_the_eta_behind_a_running_job_counts_down(manager, store, clock) -> None:
    await history(store, BIG, took=17)
    running = await start(store, BIG, at=NOW)
    waiting = await queue(store, BIG)
    clock.now = NOW + 2
    assert await eta(manager, running) == pytest.approx(15)
    assert await eta(manager, waiting) == pytest.approx(15 + 17)
    clock.now = NOW + 10
    assert await eta(manager, running) == pytest.approx(7)
    assert await eta(manager, waiting) == pytest.approx(7 + 17)
    clock.now = NOW + 30  # the running job is late: it may end any moment
    assert await eta(manager, running) == pytest.approx(0)
    assert await eta(manager, waiting) == pytest.approx(17)


async def test_a_running_jobs_progress_tells_its_remaining_time(manager, store, clock) -> None:
    await history(store, BIG, took=17)
    running = await start(store, BIG, at=NOW)
    assert await store.report(running, "w1", events=[], progress=(10, 40))
    clock.now = NOW + 5  # a quarter done in 5 s: 15 s to go, whatever the history says
    assert await eta(manager, running) == pytest.approx(15)
    waiting = await queue(store, BIG)
    assert await eta(manager, waiting) == pytest.approx(15 + 17)


async def test_comparable_jobs_set_the_duration(manager, store, clock) -> None:
    await history(store, SMALL, took=2)
    await history(store, BIG, took=20)
    big = await queue(store, BIG)
    assert await eta(manager, big) == pytest.approx(20)
    clock.now = NOW + 50  # nothing runs: the time until it ends does not change
    assert await eta(manager, big) == pytest.approx(20)
    await store.cancel(big, now=clock.now)
    assert await eta(manager, await queue(store, SMALL)) == pytest.approx(2)


async def test_coarser_matches_then_all_recent_jobs_when_none_compares(
    manager, store, clock
) -> None:
    await history(store, SMALL, took=2)
    await history(store, {**SMALL, "width": 256, "height": 256}, took=1)
    await history(store, {**SMALL, "model": "other"}, took=30)
    # Other steps, same model, mode and size: the jobs of that size.
    other_steps = await queue(store, {**SMALL, "steps": 8})
    assert await eta(manager, other_steps) == pytest.approx(2)
    await store.cancel(other_steps, now=clock.now)
    # Another size: the model's jobs in that mode (median of 2, 2, 2, 1, 1, 1).
    other_size = await queue(store, {**SMALL, "width": 1024, "height": 1024})
    assert await eta(manager, other_size) == pytest.approx(1.5)
    await store.cancel(other_size, now=clock.now)
    # A model never run: all recent jobs (median of 1, 1, 1, 2, 2, 2, 30, 30, 30).
    assert await eta(manager, await queue(store, {**SMALL, "model": "new"})) == pytest.approx(2)


async def test_running_jobs_show_how_many_workers_take_the_queue(manager, store, clock) -> None:
    await history(store, BIG, took=17)
    await start(store, BIG, at=NOW, worker="w1")
    await start(store, BIG, at=NOW + 6, worker="w2")
    first, second = await queue(store, BIG), await queue(store, BIG)
    clock.now = NOW + 8  # w1 ends in 9 s, w2 in 15 s
    assert await eta(manager, first) == pytest.approx(9 + 17)
    assert await eta(manager, second) == pytest.approx(15 + 17)


async def test_no_history_no_eta(manager, store) -> None:
    assert await eta(manager, await queue(store, BIG)) is None
