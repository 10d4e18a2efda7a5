"""The job store contract, run against every backend."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from easel.core.events import (
    GenerationQueued,
    GenerationStarted,
    JobCancelled,
    JobStarted,
    JobSucceeded,
    Progress,
)
from easel.jobs.models import Job, JobStatus
from easel.jobs.store.base import QUEUED_EVENT, IdempotencyConflict, QueueFull, started_event

NOW = 1_000_000.0


def new_job(**fields) -> Job:
    defaults = {
        "id": uuid.uuid4().hex,
        "request": {"prompt": "x"},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Job(**{**defaults, **fields})


async def submit(store, count: int = 1, **fields) -> list[Job]:
    return [await store.submit(new_job(**fields), max_queued=1000) for _ in range(count)]


async def test_submit_then_get(store) -> None:
    (job,) = await submit(store, request={"prompt": "a fox", "steps": 3})
    stored = await store.get(job.id)
    assert stored == job
    assert stored.status is JobStatus.QUEUED
    assert await store.get("unknown") is None


async def test_list_newest_first_with_cursor_and_filter(store) -> None:
    jobs = await submit(store, 5)
    page, cursor = await store.list_jobs(status=None, limit=2, cursor=None)
    assert [j.id for j in page] == [jobs[4].id, jobs[3].id]
    page2, cursor2 = await store.list_jobs(status=None, limit=2, cursor=cursor)
    assert [j.id for j in page2] == [jobs[2].id, jobs[1].id]
    page3, cursor3 = await store.list_jobs(status=None, limit=2, cursor=cursor2)
    assert [j.id for j in page3] == [jobs[0].id] and cursor3 is None
    await store.claim("w", now=NOW)
    running, _ = await store.list_jobs(status=JobStatus.RUNNING, limit=10, cursor=None)
    assert [j.id for j in running] == [jobs[0].id]
    counts = await store.counts()
    assert counts[JobStatus.QUEUED] == 4 and counts[JobStatus.RUNNING] == 1
    assert counts[JobStatus.DONE] == 0


async def test_claim_in_arrival_order(store) -> None:
    jobs = await submit(store, 3)
    claimed = [await store.claim("w1", now=NOW + i) for i in range(3)]
    assert [c.id for c in claimed] == [j.id for j in jobs]
    first = claimed[0]
    assert first.status is JobStatus.RUNNING
    assert first.attempts == 1 and first.worker_id == "w1"
    assert first.started_at == NOW and first.heartbeat_at == NOW
    assert await store.claim("w1", now=NOW) is None


async def test_claim_respects_not_before(store) -> None:
    (later,) = await submit(store, not_before=NOW + 10)
    (now,) = await submit(store)
    assert (await store.claim("w", now=NOW)).id == now.id
    assert await store.claim("w", now=NOW + 5) is None
    assert (await store.claim("w", now=NOW + 10)).id == later.id


async def test_concurrent_claims_never_share_a_job(open_store) -> None:
    stores = [await open_store() for _ in range(3)]
    jobs = await submit(stores[0], 12)
    claims = await asyncio.gather(*(stores[i % 3].claim(f"w{i}", now=NOW) for i in range(20)))
    claimed = [c.id for c in claims if c is not None]
    assert sorted(claimed) == sorted(j.id for j in jobs)


async def test_position(store) -> None:
    jobs = await submit(store, 3)
    assert [await store.position(j.id) for j in jobs] == [0, 1, 2]
    await store.claim("w", now=NOW)
    assert await store.position(jobs[0].id) is None
    assert [await store.position(j.id) for j in jobs[1:]] == [0, 1]
    assert await store.position("unknown") is None


async def test_heartbeat_and_ownership(store) -> None:
    (job,) = await submit(store)
    await store.claim("w1", now=NOW)
    beat = await store.heartbeat(job.id, "w1", now=NOW + 5)
    assert beat is not None and beat.heartbeat_at == NOW + 5
    assert await store.heartbeat(job.id, "w2", now=NOW + 5) is None
    assert not await store.report(job.id, "w2", events=[], progress=(1, 4))
    assert await store.report(job.id, "w1", events=[], progress=(2, 4))
    stored = await store.get(job.id)
    assert (stored.progress_step, stored.progress_total) == (2, 4)
    # Events alone leave the progress as it was.
    assert await store.report(job.id, "w1", events=[GenerationQueued(position=0)])
    stored = await store.get(job.id)
    assert (stored.progress_step, stored.progress_total) == (2, 4)


async def test_finish_only_by_the_owner_and_once(store) -> None:
    (job,) = await submit(store)
    await store.claim("w1", now=NOW)
    assert not await store.finish(job.id, "w2", status=JobStatus.DONE, now=NOW + 1)
    result = {"images": [{"sha256": "ab"}]}
    assert await store.finish(job.id, "w1", status=JobStatus.DONE, now=NOW + 1, result=result)
    stored = await store.get(job.id)
    assert stored.status is JobStatus.DONE and stored.result == result
    assert stored.finished_at == NOW + 1
    assert not await store.finish(job.id, "w1", status=JobStatus.FAILED, now=NOW + 2)
    assert (await store.get(job.id)).status is JobStatus.DONE


async def test_state_changes_log_their_events_in_the_same_step(store) -> None:
    """A submit logs `queued` and a claim `started`; a report and a finish log their
    events, in order, only when they write."""
    (job,) = await submit(store)
    assert await store.read(job.id, after=0) == [(1, QUEUED_EVENT)]
    claimed = await store.claim("w1", now=NOW)
    assert claimed.attempts == 1
    assert await store.read(job.id, after=1) == [(2, started_event(claimed))]
    assert not await store.report(job.id, "w2", events=[Progress(step=1, total=2)], progress=(1, 2))
    gathered = [GenerationStarted(), Progress(step=1, total=2)]
    assert await store.report(job.id, "w1", events=gathered, progress=(1, 2))
    assert not await store.finish(
        job.id, "w2", status=JobStatus.DONE, now=NOW, events=[JobCancelled()]
    )
    ending = [Progress(step=2, total=2), JobSucceeded(result={})]
    assert await store.finish(job.id, "w1", status=JobStatus.DONE, now=NOW, events=ending)
    assert await store.read(job.id, after=2) == [
        (3, GenerationStarted()),
        (4, Progress(step=1, total=2)),
        (5, Progress(step=2, total=2)),
        (6, JobSucceeded(result={})),
    ]
    # A second attempt logs its own start, numbered on.
    (again,) = await submit(store)
    await store.claim("w1", now=NOW)
    await store.retry(again.id, "w1", now=NOW, not_before=NOW, error={"code": "x"})
    second = await store.claim("w1", now=NOW)
    assert [event for _, event in await store.read(again.id, after=1)] == [
        JobStarted(attempt=1),
        JobStarted(attempt=2),
    ] and second.attempts == 2


async def test_retry_requeues_then_fails_when_attempts_are_spent(store) -> None:
    (job,) = await submit(store, max_attempts=2)
    error = {"code": "bad_gateway", "message": "upstream 502"}
    await store.claim("w", now=NOW)
    again = await store.retry(job.id, "w", now=NOW, not_before=NOW + 3, error=error)
    assert again.status is JobStatus.QUEUED and again.not_before == NOW + 3
    assert again.error == error and again.worker_id is None
    assert await store.claim("w", now=NOW + 1) is None  # backing off
    second = await store.claim("w", now=NOW + 3)
    assert second.attempts == 2
    failed = await store.retry(job.id, "w", now=NOW + 4, not_before=NOW + 9, error=error)
    assert failed.status is JobStatus.FAILED and failed.finished_at == NOW + 4
    assert await store.retry(job.id, "w", now=NOW + 5, not_before=NOW, error=error) is None


async def test_cancel(store) -> None:
    queued, running, finished = await submit(store, 3)
    await store.claim("w", now=NOW)  # takes `queued`... the oldest
    # re-label: the oldest is running now
    running, queued = queued, running
    await store.claim("w", now=NOW)  # and the next one too; keep one queued
    await store.cancel(finished.id, now=NOW)
    assert (await store.get(finished.id)).status is JobStatus.CANCELLED

    cancelled_queued = await store.cancel(finished.id, now=NOW + 1)
    assert cancelled_queued.status is JobStatus.CANCELLED  # idempotent
    asked = await store.cancel(running.id, now=NOW + 1)
    assert asked.status is JobStatus.RUNNING and asked.cancel_requested
    assert (await store.heartbeat(running.id, "w", now=NOW + 2)).cancel_requested
    assert await store.cancel("unknown", now=NOW) is None
    assert await store.finish(running.id, "w", status=JobStatus.CANCELLED, now=NOW + 3)
    done = await store.cancel(running.id, now=NOW + 4)
    assert done.status is JobStatus.CANCELLED and done.finished_at == NOW + 3


async def test_a_cancelled_queued_job_is_never_claimed(store) -> None:
    (job,) = await submit(store)
    await store.cancel(job.id, now=NOW)
    assert await store.claim("w", now=NOW) is None
    assert await store.position(job.id) is None


async def test_recover_requeues_stale_jobs(store) -> None:
    stale, fresh = await submit(store, 2)
    await store.claim("dead", now=NOW)
    await store.claim("alive", now=NOW)
    await store.heartbeat(fresh.id, "alive", now=NOW + 25)
    recovered = await store.recover(now=NOW + 30, visibility_timeout=10)
    assert [job.id for job in recovered] == [stale.id]
    assert recovered[0].status is JobStatus.QUEUED
    assert recovered[0].error["code"] == "worker_lost"
    assert (await store.get(fresh.id)).status is JobStatus.RUNNING
    # The dead worker lost it: its late finish is refused; another worker takes it.
    assert not await store.finish(stale.id, "dead", status=JobStatus.DONE, now=NOW + 31)
    again = await store.claim("alive", now=NOW + 31)
    assert again.id == stale.id and again.attempts == 2


async def test_recover_fails_spent_and_cancels_cancelled(store) -> None:
    spent, cancelled = await submit(store, 2, max_attempts=1)
    await store.claim("dead", now=NOW)
    await store.claim("dead", now=NOW)
    await store.cancel(cancelled.id, now=NOW)
    recovered = {job.id: job for job in await store.recover(now=NOW + 60, visibility_timeout=10)}
    assert recovered[spent.id].status is JobStatus.FAILED
    assert recovered[cancelled.id].status is JobStatus.CANCELLED


async def test_idempotency(store) -> None:
    first = await store.submit(new_job(idempotency_key="k1", request_hash="h1"), max_queued=10)
    same = await store.submit(new_job(idempotency_key="k1", request_hash="h1"), max_queued=10)
    assert same.id == first.id
    with pytest.raises(IdempotencyConflict):
        await store.submit(new_job(idempotency_key="k1", request_hash="h2"), max_queued=10)
    counts = await store.counts()
    assert counts[JobStatus.QUEUED] == 1


async def test_queue_full(store) -> None:
    await submit(store, 2)
    with pytest.raises(QueueFull) as caught:
        await store.submit(new_job(), max_queued=2)
    assert caught.value.queued == 2
    await store.claim("w", now=NOW)  # running jobs do not count as queued
    await store.submit(new_job(), max_queued=2)


async def test_event_log(store) -> None:
    (job,) = await submit(store)
    ids = [await store.append(job.id, Progress(step=i, total=3)) for i in range(1, 4)]
    assert ids == [2, 3, 4]  # after the submit's own `queued`
    logged = [event for _, event in await store.read(job.id, after=0)]
    assert [getattr(e, "step", None) for e in logged] == [None, 1, 2, 3]
    assert [i for i, _ in await store.read(job.id, after=3)] == [4]
    assert await store.read("unknown", after=0) == []


async def test_sweep_removes_old_terminal_jobs_and_their_events(store) -> None:
    old, recent, queued = await submit(store, 3)
    for job, at in ((old, NOW), (recent, NOW + 100)):
        await store.claim("w", now=at)
        await store.finish(job.id, "w", status=JobStatus.DONE, now=at)
    await store.append(old.id, JobSucceeded(result={}))
    gone = await store.sweep(older_than=NOW + 50)
    assert [job.id for job in gone] == [old.id]
    assert await store.get(old.id) is None and await store.read(old.id, after=0) == []
    assert await store.get(recent.id) is not None and await store.get(queued.id) is not None


async def test_finish_needs_a_terminal_status(store) -> None:
    (job,) = await submit(store)
    await store.claim("w", now=NOW)
    with pytest.raises(ValueError):
        await store.finish(job.id, "w", status=JobStatus.QUEUED, now=NOW)


async def test_a_cancelled_caller_leaves_no_transaction_open(store) -> None:
    (job,) = await submit(store)
    await store.claim("w", now=NOW)
    for _ in range(20):  # cancel at every point of a write
        task = asyncio.ensure_future(store.report(job.id, "w", events=[], progress=(1, 2)))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await store.report(job.id, "w", events=[], progress=(2, 2))
    assert await store.finish(job.id, "w", status=JobStatus.DONE, now=NOW + 1)


async def test_text_beyond_ascii_round_trips_and_guards_hold(store) -> None:
    """Non-ASCII in the request, the idempotency key and the worker id is stored as given,
    and the ownership checks that compare stored text still match."""
    request = {"prompt": "un renard roux — 狐狸", "negative_prompt": "flou"}
    first = await store.submit(
        new_job(request=request, idempotency_key="clé-1", request_hash="h"), max_queued=10
    )
    again = await store.submit(
        new_job(request=request, idempotency_key="clé-1", request_hash="h"), max_queued=10
    )
    assert again.id == first.id and (await store.get(first.id)).request == request
    claimed = await store.claim("wörker-ü", now=NOW)
    assert claimed.worker_id == "wörker-ü" and claimed.request == request
    assert await store.heartbeat(first.id, "wörker-ü", now=NOW + 1) is not None
    note = GenerationQueued(position=0, request_id="été")
    assert await store.report(first.id, "wörker-ü", events=[note])
    assert await store.finish(first.id, "wörker-ü", status=JobStatus.DONE, now=NOW + 2)
    assert (await store.get(first.id)).status is JobStatus.DONE
    assert [e for _, e in await store.read(first.id, after=2)] == [note]
    # The read-decide-write paths compare re-encoded fields with the stored text.
    (lost,) = await submit(store)
    await store.claim("wörker-ü", now=NOW)
    (recovered,) = await store.recover(now=NOW + 100, visibility_timeout=10)
    assert recovered.id == lost.id and recovered.status is JobStatus.QUEUED


async def test_finish_and_claim_hands_the_worker_its_next_job_in_one_step(store) -> None:
    """A busy worker's finish claims its next job atomically; the finish still answers
    whether it owned the job, and a worker that did not own it still gets work."""
    first, second, third = await submit(store, 3)
    await store.claim("w1", now=NOW)
    owned, following = await store.finish_and_claim(
        first.id, "w1", status=JobStatus.DONE, now=NOW + 1, events=[JobSucceeded(result={})]
    )
    assert owned and following.id == second.id
    assert following.status is JobStatus.RUNNING and following.worker_id == "w1"
    assert following.attempts == 1 and following.started_at == NOW + 1
    assert (await store.get(first.id)).status is JobStatus.DONE
    assert [e for _, e in await store.read(first.id, after=2)] == [JobSucceeded(result={})]
    assert [e for _, e in await store.read(second.id, after=1)] == [started_event(following)]
    # Not the owner: nothing written, but the worker is free and takes the next job.
    owned, taken = await store.finish_and_claim(
        second.id, "w2", status=JobStatus.FAILED, now=NOW + 2
    )
    assert not owned and taken.id == third.id and taken.worker_id == "w2"
    assert (await store.get(second.id)).status is JobStatus.RUNNING
    # Nothing left to claim.
    assert await store.finish_and_claim(
        second.id, "w1", status=JobStatus.DONE, now=NOW + 3, progress=(4, 4)
    ) == (True, None)
    done = await store.get(second.id)
    assert done.status is JobStatus.DONE and (done.progress_step, done.progress_total) == (4, 4)
    with pytest.raises(ValueError):
        await store.finish_and_claim(third.id, "w2", status=JobStatus.RUNNING, now=NOW + 4)


async def test_the_submitting_trace_is_kept_through_claim_and_finish(store) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    (job,) = await submit(store, traceparent=traceparent, tracestate="vendor=1")
    claimed = await store.claim("w1", now=NOW)
    assert (claimed.traceparent, claimed.tracestate) == (traceparent, "vendor=1")
    await store.finish(job.id, "w1", status=JobStatus.DONE, now=NOW + 1, result={})
    done = await store.get(job.id)
    assert (done.traceparent, done.tracestate) == (traceparent, "vendor=1")
