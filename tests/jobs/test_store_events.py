"""A job's log on every backend: each job event type goes in typed and comes back equal,
and the events the previous version logged (plain JSON dicts) still read back typed."""

from __future__ import annotations

import json

from easel.core.events import JobEvent
from easel.jobs.models import JobStatus
from easel.jobs.store.base import QUEUED_EVENT, WORKER_LOST, moved_event, started_event
from easel.jobs.store.redis import RedisJobStore
from easel.jobs.store.sqlite import SQLiteJobStore
from tests.core.test_events import OLD_JOB_EVENTS
from tests.jobs.test_store_conformance import NOW, submit

EVERY_TYPE: list[JobEvent] = [typed for _, typed in OLD_JOB_EVENTS]


async def log_as_the_previous_version(store, job_id: str, text: str) -> None:
    """Write an event's JSON into the log the way the previous version's store did."""
    if isinstance(store, SQLiteJobStore):

        def insert() -> None:
            store.db.execute(
                "INSERT INTO events (job_id, id, data) SELECT ?1, COALESCE(MAX(id), 0) + 1, ?2"
                " FROM events WHERE job_id=?1",
                (job_id, text),
            )

        await store._transaction(insert)
    else:
        assert isinstance(store, RedisJobStore)
        await store.redis.rpush(f"{store.prefix}:events:{job_id}", text)


async def test_every_job_event_type_round_trips_by_append(store) -> None:
    (job,) = await submit(store)
    for event in EVERY_TYPE:
        await store.append(job.id, event)
    logged = await store.read(job.id, after=0)
    assert logged == list(enumerate([QUEUED_EVENT, *EVERY_TYPE], 1))
    assert [type(event) for _, event in logged[1:]] == [type(event) for event in EVERY_TYPE]


async def test_every_job_event_type_round_trips_by_report_and_finish(store) -> None:
    (job,) = await submit(store)
    claimed = await store.claim("w", now=NOW)
    *running, ending = EVERY_TYPE
    assert await store.report(job.id, "w", events=running[:4], progress=(1, 4))
    events = running[4:] + [ending]
    assert await store.finish(job.id, "w", status=JobStatus.CANCELLED, now=NOW, events=events)
    logged = [event for _, event in await store.read(job.id, after=0)]
    assert logged == [QUEUED_EVENT, started_event(claimed), *EVERY_TYPE]


async def test_events_of_the_previous_version_read_back_typed(store) -> None:
    (job,) = await submit(store)
    for old, _ in OLD_JOB_EVENTS:
        await log_as_the_previous_version(store, job.id, json.dumps(old))
    logged = [event for _, event in await store.read(job.id, after=1)]
    assert logged == EVERY_TYPE
    assert [type(event) for event in logged] == [type(event) for event in EVERY_TYPE]


async def test_the_events_of_jobs_moved_by_the_store_read_back(store) -> None:
    """Requeued after a lost worker, then failed once its attempts are spent: the events
    say so, with the error the store recorded."""
    (job,) = await submit(store, max_attempts=2)
    for at in (NOW, NOW + 100):
        assert await store.claim("dead", now=at) is not None
        (moved,) = await store.recover(now=at + 50, visibility_timeout=10)
        await store.append(job.id, moved_event(moved))
    logged = [event for _, event in await store.read(job.id, after=0)]
    assert [event.type for event in logged] == [
        "queued", "started", "queued", "started", "error"
    ]  # fmt: skip
    requeued, failed = logged[2], logged[4]
    assert requeued.model_dump(exclude_none=True) == {
        "type": "queued", "status": "queued", "retry": True, "error": WORKER_LOST
    }  # fmt: skip
    assert failed.model_dump(exclude_none=True) == {
        "type": "error", "status": "failed", "error": WORKER_LOST
    }  # fmt: skip
