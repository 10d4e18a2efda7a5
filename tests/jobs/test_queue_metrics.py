"""The job queue's gauges (issue 17, item 7), on both stores.

First the store's part (`queue_stats`, `worker_seen`, `worker_gone`) at given times; then
the job manager app's `/metrics`, refreshed by its maintenance loop from the store while a
worker of its own store connection (as in another process) runs the jobs, comes and goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from easel.core.image_store import ImageStore
from easel.jobs.app import create_app
from easel.jobs.models import JobStatus
from easel.jobs.runtime import open_store
from easel.jobs.settings import JobsSettings
from easel.jobs.worker import Worker, WorkerConfig
from tests.jobs.conftest import BACKENDS
from tests.jobs.helpers import WAIT
from tests.jobs.scripted_generation import ScriptedGeneration, result, sse
from tests.jobs.test_store_conformance import NOW, submit

WINDOW = 30.0


async def test_an_empty_store_says_so(store) -> None:
    stats = await store.queue_stats(live_since=NOW - WINDOW)
    assert stats.counts == dict.fromkeys(JobStatus, 0)
    assert stats.oldest_queued_at is None
    assert stats.retrying == 0 and stats.live_workers == 0


async def test_stats_count_by_status_the_oldest_queued_and_the_retried(store) -> None:
    first, second, third = [(await submit(store, created_at=NOW + i))[0] for i in range(3)]
    claimed = await store.claim("w1", now=NOW)
    assert claimed.id == first.id
    stats = await store.queue_stats(live_since=NOW - WINDOW)
    assert stats.counts[JobStatus.QUEUED] == 2 and stats.counts[JobStatus.RUNNING] == 1
    assert stats.oldest_queued_at == second.created_at
    assert stats.retrying == 0
    # A transient failure: back in the queue, first in line, past its first attempt.
    error = {"code": "upstream_failed", "message": "GPU gone"}
    await store.retry(first.id, "w1", now=NOW, not_before=NOW + 60, error=error)
    stats = await store.queue_stats(live_since=NOW - WINDOW)
    assert stats.counts[JobStatus.QUEUED] == 3 and stats.retrying == 1
    assert stats.oldest_queued_at == first.created_at
    # Running again (its second attempt) it is still retrying; a first attempt is not.
    assert (await store.claim("w1", now=NOW + 60)).id == first.id
    await store.claim("w1", now=NOW + 60)
    stats = await store.queue_stats(live_since=NOW - WINDOW)
    assert stats.counts[JobStatus.RUNNING] == 2 and stats.retrying == 1
    assert stats.oldest_queued_at == third.created_at


async def test_a_worker_is_live_until_it_goes_or_is_not_seen_for_the_window(store) -> None:
    await store.worker_seen("w1", now=NOW, forget_before=NOW - WINDOW)
    await store.worker_seen("w2", now=NOW, forget_before=NOW - WINDOW)
    assert (await store.queue_stats(live_since=NOW - WINDOW)).live_workers == 2
    await store.worker_gone("w2")  # a clean stop
    assert (await store.queue_stats(live_since=NOW - WINDOW)).live_workers == 1
    # w1 is seen no more (killed): past the window it is not counted...
    later = NOW + WINDOW + 1
    assert (await store.queue_stats(live_since=later - WINDOW)).live_workers == 0
    # ...and the next worker to say it is alive makes the store forget it.
    await store.worker_seen("w3", now=later, forget_before=later - WINDOW)
    assert (await store.queue_stats(live_since=0)).live_workers == 1
    await store.worker_seen("w3", now=later + 1, forget_before=later - WINDOW)
    assert (await store.queue_stats(live_since=later + 1)).live_workers == 1


# ---- the job manager's /metrics -------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def jobs_settings(request: pytest.FixtureRequest, tmp_path: Path, start_redis) -> JobsSettings:
    backend = {"jobs_backend": request.param}
    if request.param == "redis":  # a server of its own: the app's store uses the default prefix
        backend["redis_url"] = start_redis("--save", "", "--appendonly", "no").url
    return JobsSettings(
        data_dir=tmp_path / "data",
        jobs_in_process_worker=False,
        jobs_submit_check=False,
        jobs_heartbeat=0.05,  # the maintenance loop, hence the gauges, refresh this often
        jobs_retry_backoff=3600,  # a retried job stays queued while the test looks
        **backend,
    )


@asynccontextmanager
async def job_manager(settings: JobsSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobs") as client:
            yield client


@asynccontextmanager
async def worker_running(settings: JobsSettings, generation: ScriptedGeneration):
    """A worker on its own store connection, as `easel worker` in another process."""
    store = await open_store(settings)
    try:
        async with generation.client() as client:
            worker = Worker(
                store=store,
                results=ImageStore(settings.images_path),
                generation=client,
                config=WorkerConfig(heartbeat_s=0.05, retry_backoff_s=3600),
            )
            task = asyncio.create_task(worker.run())
            try:
                yield worker
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await store.close()


async def scrape(api: httpx.AsyncClient) -> dict[str, float]:
    """The job gauges, by sample name (`easel_jobs` by its status label)."""
    response = await api.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name.startswith("easel_jobs"):
            for sample in family.samples:
                status = sample.labels.get("status")
                samples[f"{sample.name}:{status}" if status else sample.name] = sample.value
    return samples


async def until_scraped(
    api: httpx.AsyncClient, check: Callable[[dict[str, float]], bool]
) -> dict[str, float]:
    """The gauges once `check` holds; they refresh every few hundredths of a second."""
    deadline = time.monotonic() + WAIT
    while not check(samples := await scrape(api)):
        assert time.monotonic() < deadline, samples
        await asyncio.sleep(0.02)
    return samples


FAILS_ONCE = [
    [sse({"type": "error", "error": {"code": "unavailable", "message": "x"}, "status": 503})],
]
SCRIPTS = {"quick": [[sse(result(1))], [sse(result(2))]], "flaky": FAILS_ONCE}


async def test_the_job_managers_metrics_show_the_queue_and_its_workers(jobs_settings) -> None:
    async with job_manager(jobs_settings) as api:
        ids = []
        for prompt in ("quick", "quick", "flaky"):
            answer = await api.post("/api/generate/async", json={"prompt": prompt})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["task_id"])
        queued = await until_scraped(api, lambda s: s.get("easel_jobs:queued") == 3)
        assert queued["easel_jobs:running"] == 0 and queued["easel_jobs:done"] == 0
        assert queued["easel_jobs_oldest_queued_age_seconds"] >= 0
        assert queued["easel_jobs_live_workers"] == 0 and queued["easel_jobs_retrying"] == 0
        assert queued["easel_jobs_metrics_refreshed_timestamp_seconds"] > 0

        async with worker_running(jobs_settings, ScriptedGeneration(SCRIPTS)):
            # Two done; the flaky one failed once and waits (its backoff) for another go.
            ran = await until_scraped(
                api,
                lambda s: s["easel_jobs:done"] == 2 and s["easel_jobs_retrying"] == 1,
            )
            assert ran["easel_jobs:queued"] == 1 and ran["easel_jobs_live_workers"] == 1
        # Stopped: no longer live.
        await until_scraped(api, lambda s: s["easel_jobs_live_workers"] == 0)
        cancelled = await api.post(f"/api/generate/cancel/{ids[2]}")
        assert cancelled.json()["status"] == "cancelled"
        done = await until_scraped(api, lambda s: s["easel_jobs:queued"] == 0)
        assert done["easel_jobs:cancelled"] == 1 and done["easel_jobs_retrying"] == 0
        assert done["easel_jobs_oldest_queued_age_seconds"] == 0
