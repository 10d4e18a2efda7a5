"""The job store's owner contract, on every backend: listing by owner, idempotency keys
per owner, the owner's limit of active jobs (atomic with the submit), and sweeps that
leave no owner index behind."""

from __future__ import annotations

import asyncio

import pytest

from easel.core.identity import ANONYMOUS
from easel.jobs.models import JobStatus
from easel.jobs.store.base import IdempotencyConflict, OwnerAtLimit, QueueFull
from easel.jobs.store.redis import RedisJobStore
from tests.jobs.test_store_conformance import NOW, new_job, submit

# Names a key may have: beyond ASCII, and with the separator of the Redis key names.
OWNERS = ("alice", "bob:ops", "clé")


async def test_lists_by_owner_with_paging_and_status(store) -> None:
    jobs = {owner: await submit(store, 3, owner=owner) for owner in OWNERS}
    for owner, own in jobs.items():
        page, cursor = await store.list_jobs(status=None, limit=2, cursor=None, owner=owner)
        assert [j.id for j in page] == [own[2].id, own[1].id]
        rest, end = await store.list_jobs(status=None, limit=2, cursor=cursor, owner=owner)
        assert [j.id for j in rest] == [own[0].id] and end is None
        assert {j.owner for j in page + rest} == {owner}
    everyone, _ = await store.list_jobs(status=None, limit=100, cursor=None)
    assert len(everyone) == 9
    nobody, _ = await store.list_jobs(status=None, limit=100, cursor=None, owner="carol")
    assert nobody == []
    # Claims move jobs between the owner's status indexes too.
    claimed = await store.claim("w", now=NOW)
    assert claimed.owner == "alice"
    running, _ = await store.list_jobs(
        status=JobStatus.RUNNING, limit=10, cursor=None, owner="alice"
    )
    queued, _ = await store.list_jobs(status=JobStatus.QUEUED, limit=10, cursor=None, owner="alice")
    assert [j.id for j in running] == [claimed.id]
    assert [j.id for j in queued] == [jobs["alice"][2].id, jobs["alice"][1].id]
    await store.finish(claimed.id, "w", status=JobStatus.DONE, now=NOW + 1)
    done, _ = await store.list_jobs(status=JobStatus.DONE, limit=10, cursor=None, owner="alice")
    assert [j.id for j in done] == [claimed.id]
    none_running, _ = await store.list_jobs(
        status=JobStatus.RUNNING, limit=10, cursor=None, owner="alice"
    )
    assert none_running == []
    cancelled = await store.cancel(jobs["bob:ops"][0].id, now=NOW)
    assert cancelled.status is JobStatus.CANCELLED
    (found,), _ = await store.list_jobs(
        status=JobStatus.CANCELLED, limit=10, cursor=None, owner="bob:ops"
    )
    assert found.id == cancelled.id


async def test_idempotency_keys_are_per_owner(store) -> None:
    mine = await store.submit(
        new_job(owner="alice", idempotency_key="k", request_hash="h1"), max_queued=10
    )
    theirs = await store.submit(
        new_job(owner="bob:ops", idempotency_key="k", request_hash="h2"), max_queued=10
    )
    anonymous = await store.submit(new_job(idempotency_key="k", request_hash="h3"), max_queued=10)
    assert len({mine.id, theirs.id, anonymous.id}) == 3
    assert (theirs.owner, anonymous.owner) == ("bob:ops", ANONYMOUS)
    again = await store.submit(
        new_job(owner="alice", idempotency_key="k", request_hash="h1"), max_queued=10
    )
    assert again.id == mine.id  # the same owner keeps the same semantics
    with pytest.raises(IdempotencyConflict):
        await store.submit(
            new_job(owner="alice", idempotency_key="k", request_hash="h2"), max_queued=10
        )


async def test_an_owner_at_its_limit_of_active_jobs_is_refused(store) -> None:
    first, second = await submit(store, 2, owner="alice")
    with pytest.raises(OwnerAtLimit) as refused:
        await store.submit(new_job(owner="alice"), max_queued=10, max_active=2)
    assert refused.value.active == 2
    # Running jobs count; other owners and the unlimited do not wait for alice.
    await store.claim("w", now=NOW)
    with pytest.raises(OwnerAtLimit):
        await store.submit(new_job(owner="alice"), max_queued=10, max_active=2)
    await store.submit(new_job(owner="bob:ops"), max_queued=10, max_active=2)
    await store.submit(new_job(owner="alice"), max_queued=10)
    # A replay of an idempotent submit is answered, not refused.
    keyed = await store.submit(
        new_job(owner="carol", idempotency_key="k", request_hash="h"), max_queued=10, max_active=1
    )
    replay = await store.submit(
        new_job(owner="carol", idempotency_key="k", request_hash="h"), max_queued=10, max_active=1
    )
    assert replay.id == keyed.id
    # Ended jobs do not count.
    await store.finish(first.id, "w", status=JobStatus.DONE, now=NOW)
    await store.cancel(second.id, now=NOW)
    room = await store.submit(new_job(owner="alice"), max_queued=10, max_active=2)
    assert room.status is JobStatus.QUEUED
    # The owner's limit is checked first; the queue's still holds.
    with pytest.raises(QueueFull):
        await store.submit(new_job(owner="dave"), max_queued=1, max_active=5)


async def test_concurrent_submits_never_pass_the_owners_limit(open_store) -> None:
    stores = [await open_store() for _ in range(4)]

    async def attempt(number: int) -> bool:
        try:
            await stores[number % len(stores)].submit(
                new_job(owner="alice"), max_queued=1000, max_active=3
            )
        except OwnerAtLimit:
            return False
        return True

    accepted = await asyncio.gather(*map(attempt, range(24)))
    assert sum(accepted) == 3
    assert (await stores[0].counts())[JobStatus.QUEUED] == 3


async def test_sweep_forgets_the_owners_jobs_and_frees_their_keys(store) -> None:
    job = await store.submit(
        new_job(owner="clé", idempotency_key="k", request_hash="h1"), max_queued=10
    )
    await store.claim("w", now=NOW)
    await store.finish(job.id, "w", status=JobStatus.DONE, now=NOW)
    assert [gone.id for gone in await store.sweep(older_than=NOW + 1)] == [job.id]
    for status in (None, JobStatus.DONE):
        left, _ = await store.list_jobs(status=status, limit=10, cursor=None, owner="clé")
        assert left == []
    again = await store.submit(
        new_job(owner="clé", idempotency_key="k", request_hash="h2"), max_queued=10, max_active=1
    )
    assert again.id != job.id
    if isinstance(store, RedisJobStore):  # and no index of the owner is left behind
        await store.cancel(again.id, now=NOW)
        await store.sweep(older_than=NOW + 1)
        keys = [key async for key in store.redis.scan_iter(match=f"{store.prefix}:*")]
        assert sorted(keys) == [f"{store.prefix}:seq", f"{store.prefix}:wake"]
