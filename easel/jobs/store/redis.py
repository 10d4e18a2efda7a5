"""The Redis job store: one queue shared by gateways, job managers and workers on many machines.

A job is a hash with one JSON value per field; sorted sets index it by arrival, status,
heartbeat and finish time (the key layout is in `redis_scripts`). Every read-modify-write
is atomic on the server:

- where the change is fixed in advance (submit, claim, heartbeat, progress, finish), one Lua
  script checks and writes;
- where Python decides the next state (cancel, retry, recover use `requeued_or_failed`), the
  job is read, its next state computed, and written by a script only if the fields that
  decision read are unchanged; otherwise it is read again (optimistic concurrency).

Time always comes from the callers' `now`, never from the Redis clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Unpack

from pydantic_core import to_json, to_jsonable_python
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from easel.core.events import ErrorBody, JobEvent
from easel.jobs.models import Job, JobStatus
from easel.jobs.store.base import (
    QUEUED_EVENT,
    WORKER_LOST,
    Ending,
    IdempotencyConflict,
    OwnerAtLimit,
    QueueFull,
    QueueStats,
    Report,
    decode_event,
    encode_event,
    finished_fields,
    is_retrying,
    reported_fields,
    requeued_or_failed,
)
from easel.jobs.store.redis_scripts import Scripts
from easel.jobs.store.wake import WorkSignal

# A dropped connection (a Redis restart or fail-over) is retried for about ten seconds.
_RETRY = Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=8)
_HEALTH_CHECK_S = 5  # an idle pooled connection is PINGed before use after this long
_SWEEP_BATCH = 200
_MIN_BLOCK_S = 0.01  # BLPOP's timeout has millisecond resolution (Redis >= 6)

# The fields each optimistic decision reads: written only if they still hold.
_CANCEL_READS = ("status",)
_RETRY_READS = ("status", "worker_id", "attempts", "cancel_requested")
_RECOVER_READS = (*_RETRY_READS, "heartbeat_at")


def _encode(value: Any) -> str:
    """Compact JSON, byte for byte what `json.dumps` writes (scripts and guards compare the
    stored text), made by pydantic-core's encoder, which is several times faster."""
    text = to_json(value).decode()
    # json.dumps escapes non-ASCII; keep its text so that values stored by either agree.
    return text if text.isascii() else json.dumps(value, separators=(",", ":"))


def _fields(job: Job) -> dict[str, str]:
    return {name: _encode(value) for name, value in job.model_dump(mode="json").items()}


def _job(fields: Mapping[Any, Any] | Sequence[Any]) -> Job:
    """A job from its hash: HGETALL's dict, or a script's flat [field, value, ...] list."""
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(fields, Mapping):
        pairs = fields.items()
    else:
        pairs = zip(fields[::2], fields[1::2], strict=True)
    # Each value is JSON already: join them into one object and let pydantic-core parse
    # it in one pass (five times faster than json.loads per field, then validating).
    text = ",".join(f"{json.dumps(name)}:{value}" for name, value in pairs)
    return Job.model_validate_json(f"{{{text}}}")


def _index(status: JobStatus | None, owner: str | None) -> str:
    """The sorted set listing the jobs of `status` and `owner` (either may be None: any)."""
    if owner is None:
        return "all" if status is None else f"status:{status.value}"
    return f"owner:{owner}" if status is None else f"owner-status:{status.value}:{owner}"


def _held_by(worker_id: str) -> dict[str, str]:
    return {"status": _encode(JobStatus.RUNNING.value), "worker_id": _encode(worker_id)}


def _flat(mapping: Mapping[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]


class RedisJobStore:
    """A `JobStore` over one Redis database; all its keys start with `prefix:`."""

    def __init__(self, client: Redis, *, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self._scripts = Scripts.register(client)
        self._signal = WorkSignal()  # its due time only: submits wake workers through Redis

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "easel") -> RedisJobStore:
        client = Redis.from_url(
            url,
            decode_responses=True,
            retry=_RETRY,
            retry_on_error=[ConnectionError, TimeoutError],
            health_check_interval=_HEALTH_CHECK_S,
            socket_connect_timeout=5,
            socket_keepalive=True,
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return cls(client, prefix=prefix)

    async def close(self) -> None:
        await self.redis.aclose()

    # ---- helpers -------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def _update(
        self, job_id: str, guard: Mapping[str, str], changes: Mapping[str, str]
    ) -> Job | None:
        """Write `changes` if every field in `guard` holds its value; the job as it is now."""
        found = await self._scripts.update(
            args=[self.prefix, job_id, "1", 0, len(guard), *_flat(guard), *_flat(changes)]
        )
        return _job(found) if found else None

    def _touch_args(
        self,
        job_id: str,
        guard: Mapping[str, str],
        changes: Mapping[str, str],
        events: Sequence[JobEvent],
    ) -> list[str | int]:
        """UPDATE's arguments from the job id on, not reading the job back."""
        logged = [encode_event(event) for event in events]
        return [job_id, "0", len(logged), *logged, len(guard), *_flat(guard), *_flat(changes)]

    async def _touch(
        self,
        job_id: str,
        guard: Mapping[str, str],
        changes: Mapping[str, str],
        events: Sequence[JobEvent],
    ) -> bool:
        """`_update` without reading the job back (reports come at every step), logging
        `events` in the same step when the write happens."""
        args = self._touch_args(job_id, guard, changes, events)
        return bool(await self._scripts.update(args=[self.prefix, *args]))

    async def _change(
        self, job_id: str, decide: Callable[[Job], Job | None], *, reads: Sequence[str]
    ) -> Job | None:
        """Read the job, `decide` its next state (None: leave it), write that state if the
        fields in `reads` did not change meanwhile, else start over. The job as written."""
        while True:
            job = await self.get(job_id)
            if job is None:
                return None
            wanted = decide(job)
            if wanted is None or wanted == job:
                return wanted
            before, after = _fields(job), _fields(wanted)
            guard = {name: before[name] for name in reads}
            changes = {name: value for name, value in after.items() if before[name] != value}
            written = await self._update(job_id, guard, changes)
            if written is not None:
                return written

    # ---- records -------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        found = await self.redis.hgetall(self._key(f"job:{job_id}"))
        return _job(found) if found else None

    async def list_jobs(
        self, *, status: JobStatus | None, limit: int, cursor: str | None, owner: str | None = None
    ) -> tuple[list[Job], str | None]:
        index = _index(status, owner)
        before = f"({cursor}" if cursor and cursor.isdigit() else "+inf"
        rows = await self._scripts.page(args=[self.prefix, index, before, limit + 1])
        jobs = [_job(fields) for _, fields in rows[:limit]]
        next_cursor = str(int(float(rows[limit - 1][0]))) if len(rows) > limit else None
        return jobs, next_cursor

    async def counts(self) -> dict[JobStatus, int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for status in JobStatus:
                pipe.zcard(self._key(f"status:{status.value}"))
            found = await pipe.execute()
        return {status: int(count) for status, count in zip(JobStatus, found, strict=True)}

    async def queue_stats(self, *, live_since: float) -> QueueStats:
        queued, running = JobStatus.QUEUED, JobStatus.RUNNING
        async with self.redis.pipeline(transaction=True) as pipe:
            for status in JobStatus:
                pipe.zcard(self._key(f"status:{status.value}"))
            pipe.zrange(self._key(f"status:{queued.value}"), 0, -1)  # oldest (by seq) first
            pipe.zrange(self._key(f"status:{running.value}"), 0, -1)
            pipe.zcount(self._key("workers"), _encode(float(live_since)), "+inf")
            *sizes, queued_ids, running_ids, live = await pipe.execute()
        # The live jobs' attempts (bounded by the queue limit) and the oldest one's age.
        live_jobs = [(queued, str(i)) for i in queued_ids] + [
            (running, str(i)) for i in running_ids
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, job_id in live_jobs:
                pipe.hget(self._key(f"job:{job_id}"), "attempts")
            if queued_ids:
                pipe.hget(self._key(f"job:{queued_ids[0]}"), "created_at")
            found = await pipe.execute()
        # A job removed between the two reads answers None: it no longer counts.
        attempts = found[: len(live_jobs)]
        oldest = found[len(live_jobs)] if queued_ids else None
        retrying = sum(
            1
            for (status, _), tried in zip(live_jobs, attempts, strict=True)
            if tried is not None and is_retrying(status, int(tried))
        )
        return QueueStats(
            counts={status: int(size) for status, size in zip(JobStatus, sizes, strict=True)},
            oldest_queued_at=float(oldest) if oldest is not None else None,
            retrying=retrying,
            live_workers=int(live),
        )

    async def sweep(self, *, older_than: float) -> list[Job]:
        gone: list[Job] = []
        while True:
            batch = await self._scripts.sweep(
                args=[self.prefix, _encode(float(older_than)), _SWEEP_BATCH]
            )
            gone.extend(_job(fields) for fields in batch)
            if len(batch) < _SWEEP_BATCH:
                return gone

    # ---- queue ---------------------------------------------------------------------------
    async def submit(self, job: Job, *, max_queued: int, max_active: int | None = None) -> Job:
        fields = _fields(job)
        reply = await self._scripts.submit(
            args=[
                self.prefix,
                job.id,
                max_queued,
                -1 if max_active is None else max_active,
                fields["owner"],
                fields["idempotency_key"],
                encode_event(QUEUED_EVENT),
                *_flat(fields),
            ]
        )
        outcome = reply[0]
        if outcome == "full":
            raise QueueFull(int(reply[1]))
        if outcome == "busy":
            raise OwnerAtLimit(int(reply[1]))
        if outcome == "created":
            return job
        existing = _job(reply[1])
        if outcome == "key" and existing.request_hash != job.request_hash:
            raise IdempotencyConflict(job.idempotency_key)
        return existing

    async def position(self, job_id: str) -> int | None:
        rank = await self.redis.zrank(self._key(f"status:{JobStatus.QUEUED.value}"), job_id)
        return rank if isinstance(rank, int) else None

    async def claim(self, worker_id: str, *, now: float) -> Job | None:
        found = await self._scripts.claim(
            args=[self.prefix, _encode(float(now)), _encode(worker_id)]
        )
        if found:
            return _job(found)
        # Nothing runnable: when the first job backing off comes due, the wait ends.
        first = await self.redis.zrange(self._key("waiting"), 0, 0, withscores=True)
        next_due = float(first[0][1]) if first else None
        self._signal.claimed_nothing(next_due=next_due, now=now)
        return None

    async def wait_for_work(self, timeout: float) -> None:
        # Each submit pushes a token (the submit script): an idle worker blocked here takes
        # one and is running its claim within a round trip, not a poll interval, later.
        block = max(self._signal.wait_s(timeout), _MIN_BLOCK_S)
        await self.redis.blpop([self._key("wake")], timeout=block)

    async def heartbeat(self, job_id: str, worker_id: str, *, now: float) -> Job | None:
        return await self._update(
            job_id, _held_by(worker_id), {"heartbeat_at": _encode(float(now))}
        )

    async def report(self, job_id: str, worker_id: str, **report: Unpack[Report]) -> bool:
        fields = reported_fields(report)
        changes = {name: _encode(to_jsonable_python(value)) for name, value in fields.items()}
        return await self._touch(job_id, _held_by(worker_id), changes, report["events"])

    async def finish(self, job_id: str, worker_id: str, **ending: Unpack[Ending]) -> bool:
        args = self._finish_args(job_id, worker_id, ending)
        return bool(await self._scripts.update(args=[self.prefix, *args]))

    async def finish_and_claim(
        self, job_id: str, worker_id: str, **ending: Unpack[Ending]
    ) -> tuple[bool, Job | None]:
        args = self._finish_args(job_id, worker_id, ending)
        now, worker = _encode(float(ending["now"])), _encode(worker_id)
        owned, claimed = await self._scripts.update_then_claim(
            args=[self.prefix, now, worker, *args]
        )
        return bool(owned), _job(claimed) if claimed else None

    def _finish_args(self, job_id: str, worker_id: str, ending: Ending) -> list[str | int]:
        fields = finished_fields(ending)
        changes = {name: _encode(value) for name, value in fields.items()}
        return self._touch_args(job_id, _held_by(worker_id), changes, ending.get("events", ()))

    async def retry(
        self, job_id: str, worker_id: str, *, now: float, not_before: float, error: ErrorBody
    ) -> Job | None:
        def decide(job: Job) -> Job | None:
            if job.status is not JobStatus.RUNNING or job.worker_id != worker_id:
                return None
            return requeued_or_failed(job, now=now, not_before=not_before, error=error)

        return await self._change(job_id, decide, reads=_RETRY_READS)

    async def cancel(self, job_id: str, *, now: float) -> Job | None:
        def decide(job: Job) -> Job:
            if job.status.is_terminal:
                return job
            if job.status is JobStatus.QUEUED:
                update = {"status": JobStatus.CANCELLED, "finished_at": now, "updated_at": now}
                return job.model_copy(update=update)
            return job.model_copy(update={"cancel_requested": True, "updated_at": now})

        return await self._change(job_id, decide, reads=_CANCEL_READS)

    async def recover(self, *, now: float, visibility_timeout: float) -> list[Job]:
        cutoff = now - visibility_timeout

        def decide(job: Job) -> Job | None:
            stale = job.heartbeat_at is not None and job.heartbeat_at < cutoff
            if job.status is not JobStatus.RUNNING or not stale:
                return None  # it finished, or its worker answered, since we looked
            return requeued_or_failed(job, now=now, not_before=now, error=WORKER_LOST)

        stale_ids = await self.redis.zrangebyscore(
            self._key("running"), "-inf", f"({_encode(float(cutoff))}"
        )
        recovered = []
        for job_id in map(str, stale_ids):  # str already (decode_responses); for mypy
            job = await self._change(job_id, decide, reads=_RECOVER_READS)
            if job is not None:
                recovered.append(job)
        return recovered

    # ---- workers -------------------------------------------------------------------------
    async def worker_seen(self, worker_id: str, *, now: float, forget_before: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._key("workers"), {worker_id: float(now)})
            pipe.zremrangebyscore(self._key("workers"), "-inf", f"({_encode(float(forget_before))}")
            await pipe.execute()

    async def worker_gone(self, worker_id: str) -> None:
        await self.redis.zrem(self._key("workers"), worker_id)

    # ---- events --------------------------------------------------------------------------
    async def append(self, job_id: str, event: JobEvent) -> int:
        # RPUSH answers the list's new length: with events never removed one by one, that
        # is an id increasing from 1, given atomically to concurrent appenders.
        return await self.redis.rpush(self._key(f"events:{job_id}"), encode_event(event))

    async def read(self, job_id: str, *, after: int) -> list[tuple[int, JobEvent]]:
        start = max(after, 0)
        found = await self.redis.lrange(self._key(f"events:{job_id}"), start, -1)
        return [(start + offset, decode_event(event)) for offset, event in enumerate(found, 1)]
