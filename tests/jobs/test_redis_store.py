"""What only the Redis store has to prove: many clients at once, restarts, key hygiene."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio

from easel.core.events import JobQueued
from easel.jobs.models import JobStatus
from easel.jobs.store.redis import RedisJobStore
from tests.jobs.test_store_conformance import NOW, new_job, submit


@pytest.fixture()
async def connect(redis_url):
    """Opens stores on the session's server (one connection pool each), closes them after."""
    opened: list[RedisJobStore] = []
    prefixes: set[str] = set()

    async def open_one(prefix: str = "", url: str = redis_url) -> RedisJobStore:
        prefix = prefix or f"easel-test-{uuid.uuid4().hex}"
        store = await RedisJobStore.connect(url, prefix=prefix)
        opened.append(store)
        if url == redis_url:
            prefixes.add(prefix)
        return store

    yield open_one
    for store in opened:
        await store.close()
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        for prefix in prefixes:
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)


async def test_many_claimers_on_many_connections_never_share_a_job(connect) -> None:
    prefix = f"easel-test-{uuid.uuid4().hex}"
    stores = [await connect(prefix) for _ in range(6)]
    jobs = await submit(stores[0], 300)

    async def claimer(number: int) -> list[str]:
        store, taken = stores[number % len(stores)], []
        while (job := await store.claim(f"w{number}", now=NOW)) is not None:
            assert job.worker_id == f"w{number}" and job.attempts == 1
            taken.append(job.id)
        return taken

    taken = [job_id for ids in await asyncio.gather(*map(claimer, range(30))) for job_id in ids]
    assert sorted(taken) == sorted(job.id for job in jobs)  # each exactly once
    counts = await stores[1].counts()
    assert counts[JobStatus.RUNNING] == 300 and counts[JobStatus.QUEUED] == 0


async def test_cancels_racing_claims_never_run_a_cancelled_job(connect) -> None:
    prefix = f"easel-test-{uuid.uuid4().hex}"
    submitter, canceller, claimer = [await connect(prefix) for _ in range(3)]

    async def claim(delay: float):
        await asyncio.sleep(delay)
        return await claimer.claim("w", now=NOW)

    # Each round, a cancel and a claim of one queued job at once. Without a delay the claim
    # lands between the cancel's read and its write; with one, the cancel usually wins.
    for round_ in range(60):
        (job,) = await submit(submitter)
        _, claimed = await asyncio.gather(
            canceller.cancel(job.id, now=NOW), claim(0.001 * (round_ % 2))
        )
        stored = await submitter.get(job.id)
        if claimed is not None:  # claimed first: the cancel is a request to its worker
            assert stored.status is JobStatus.RUNNING and stored.cancel_requested
        else:
            assert stored.status is JobStatus.CANCELLED


async def test_concurrent_recovers_take_each_stale_job_once(connect) -> None:
    prefix = f"easel-test-{uuid.uuid4().hex}"
    stores = [await connect(prefix) for _ in range(3)]
    jobs = await submit(stores[0], 40)
    for _ in jobs:
        await stores[0].claim("dead", now=NOW)
    rounds = await asyncio.gather(
        *(store.recover(now=NOW + 60, visibility_timeout=10) for store in stores)
    )
    recovered = [job.id for found in rounds for job in found]
    assert sorted(recovered) == sorted(job.id for job in jobs)
    assert (await stores[0].counts())[JobStatus.QUEUED] == 40


async def test_a_job_made_ready_by_a_clock_ahead_waits_for_ours(connect) -> None:
    store = await connect()
    (first,) = await submit(store)
    (later,) = await submit(store, not_before=NOW + 10)
    assert (await store.claim("fast", now=NOW + 10)).id == first.id  # `later` is due for it
    assert await store.claim("slow", now=NOW) is None  # but not for a clock behind
    assert (await store.claim("slow", now=NOW + 10)).id == later.id


async def test_sweep_leaves_no_trace_and_frees_the_idempotency_key(connect, redis_url) -> None:
    store = await connect()
    job = await store.submit(new_job(idempotency_key="k", request_hash="h1"), max_queued=10)
    await store.append(job.id, JobQueued())
    await store.claim("w", now=NOW)
    await store.finish(job.id, "w", status=JobStatus.DONE, now=NOW)
    assert [gone.id for gone in await store.sweep(older_than=NOW + 1)] == [job.id]
    async with redis.asyncio.Redis.from_url(redis_url, decode_responses=True) as client:
        keys = [key async for key in client.scan_iter(match=f"{store.prefix}:*")]
    # Only the arrival counter and the (bounded, job-free) wake-up tokens are left.
    assert sorted(keys) == [f"{store.prefix}:seq", f"{store.prefix}:wake"]
    again = await store.submit(new_job(idempotency_key="k", request_hash="h2"), max_queued=10)
    assert again.id != job.id


async def test_prefixes_keep_stores_apart(connect) -> None:
    one, other = await connect(), await connect()
    await submit(one, 2)
    assert await other.claim("w", now=NOW) is None
    assert (await other.counts())[JobStatus.QUEUED] == 0
    assert (await one.counts())[JobStatus.QUEUED] == 2


async def test_a_store_outlives_a_server_restart(connect, start_redis, tmp_path) -> None:
    server = start_redis("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path))
    store = await connect(url=server.url)
    jobs = await submit(store, 3)
    await store.append(jobs[0].id, JobQueued())
    assert (await store.claim("w", now=NOW)).id == jobs[0].id

    server.stop()
    server.start()  # same port, data read back from the append-only file

    assert (await store.get(jobs[0].id)).status is JobStatus.RUNNING
    assert [event.type for _, event in await store.read(jobs[0].id, after=0)] == [
        "queued",  # the submit's
        "queued",  # appended by the test
        "started",
    ]
    assert await store.position(jobs[2].id) == 1
    assert (await store.claim("w", now=NOW)).id == jobs[1].id  # scripts are loaded again
    assert (await store.claim("w", now=NOW)).id == jobs[2].id


async def test_a_command_waits_out_a_short_outage(connect, start_redis, tmp_path) -> None:
    server = start_redis("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path))
    store = await connect(url=server.url)
    (job,) = await submit(store)
    server.stop()

    claiming = asyncio.create_task(store.claim("w", now=NOW))
    await asyncio.sleep(0.5)  # the client retries with backoff meanwhile
    assert not claiming.done()
    server.start()
    claimed = await asyncio.wait_for(claiming, timeout=15)
    assert claimed is not None and claimed.id == job.id


async def test_an_idle_worker_is_woken_by_a_submit_not_by_its_poll(connect) -> None:
    prefix = f"easel-test-{uuid.uuid4().hex}"
    worker_side, submit_side = await connect(prefix), await connect(prefix)
    waiting = asyncio.create_task(worker_side.wait_for_work(timeout=60))
    await asyncio.sleep(0.2)  # blocked on the server by now
    assert not waiting.done()
    await submit(submit_side)
    await asyncio.wait_for(waiting, timeout=10)  # long before its 60 s poll would end
    # Tokens are capped: a burst while no worker is idle leaves a bounded list.
    await submit(submit_side, 100)
    assert await submit_side.redis.llen(f"{prefix}:wake") == 64
