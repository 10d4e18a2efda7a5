"""The SQLite job store: one WAL file under the data dir, shared by processes on a machine.

The whole job is stored as JSON; the columns beside it exist to be queried. Every
read-modify-write runs in `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so
two workers (threads or processes) can never claim the same job.

Each operation is one plain function run on the store's own thread, from BEGIN to COMMIT:
one hand-off between the event loop and that thread per operation, where an async driver
pays one per statement and per fetch (measured in `benchmarks/README.md`). A caller
cancelled mid-way cannot leave a transaction open either: the function runs to its end.

An idle worker does not poll the database: what this store does that may give it work
wakes it (`WorkSignal`), and another process's write shows as a change of the WAL file,
which a `stat` every `CHANGE_CHECK_S` notices without touching the database.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, Unpack

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
    reported_fields,
    requeued_or_failed,
    started_event,
)
from easel.jobs.store.sqlite_schema import create_or_migrate
from easel.jobs.store.wake import WorkSignal

_TERMINAL = tuple(status.value for status in JobStatus if status.is_terminal)
_QUEUED, _RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value

T = TypeVar("T")

# How often an idle worker stats the WAL file for another process's write: a submit there
# starts within this. A stat is a syscall (no thread hop, no query), but each timer wake of
# an idle process costs ~0.2 ms of CPU on a small VM: 4 a second, not 100.
CHANGE_CHECK_S = 0.25
WalMark = tuple[int, int, int] | None  # the WAL file's (inode, size, mtime in ns)


class SQLiteJobStore:
    def __init__(
        self,
        connection: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        *,
        path: Path | None = None,
    ) -> None:
        # The connection is used only on `thread`, one operation at a time; other
        # connections (processes) are kept out by SQLite's own write lock.
        self.db = connection
        self._thread = thread
        self._signal = WorkSignal()
        # Without the database's path, other processes' writes are found by the poll only.
        self._wal = path.with_name(path.name + "-wal") if path is not None else None
        self._wal_looked: WalMark = None  # the WAL as it was when a claim last looked

    @classmethod
    async def open(cls, path: Path) -> SQLiteJobStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="easel-sqlite")

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            create_or_migrate(connection)
            return connection

        try:
            connection = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(connection, thread, path=path)

    async def close(self) -> None:
        # Queued behind any operation still running, so those finish first.
        await self._run(self.db.close)
        self._thread.shutdown(wait=True)

    # ---- running on the store's thread -------------------------------------------------
    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(function, *args))

    async def _transaction(self, function: Callable[..., T], *args: Any) -> T:
        return await self._run(self._in_transaction, function, *args)

    def _in_transaction(self, function: Callable[..., T], *args: Any) -> T:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            outcome = function(*args)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return outcome

    # ---- statements (called on the store's thread) -------------------------------------
    def _one(self, sql: str, *args: Any) -> Job | None:
        row = self.db.execute(sql, args).fetchone()
        return Job.model_validate_json(row[0]) if row else None

    def _save(self, job: Job) -> None:
        self.db.execute(
            "UPDATE jobs SET status=?, not_before=?, finished_at=?, worker_id=?, heartbeat_at=?,"
            " data=? WHERE id=?",
            (
                job.status.value,
                job.not_before,
                job.finished_at,
                job.worker_id,
                job.heartbeat_at,
                job.model_dump_json(),
                job.id,
            ),
        )

    def _owned(self, job_id: str, worker_id: str) -> Job | None:
        return self._one(
            "SELECT data FROM jobs WHERE id=? AND worker_id=? AND status=?",
            job_id,
            worker_id,
            _RUNNING,
        )

    def _append(self, job_id: str, event: JobEvent) -> int:
        """The next id of the job's log, in one statement."""
        row = self.db.execute(
            "INSERT INTO events (job_id, id, data) SELECT ?1, COALESCE(MAX(id), 0) + 1, ?2"
            " FROM events WHERE job_id=?1 RETURNING id",
            (job_id, encode_event(event)),
        ).fetchone()
        return int(row[0])

    def _change_owned(
        self,
        job_id: str,
        worker_id: str,
        update: dict[str, Any],
        events: Sequence[JobEvent],
    ) -> bool:
        job = self._owned(job_id, worker_id)
        if job is None:
            return False
        if update:
            self._save(job.model_copy(update=update))
        for event in events:
            self._append(job_id, event)
        return True

    # ---- records -------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        return await self._run(self._one, "SELECT data FROM jobs WHERE id=?", job_id)

    async def list_jobs(
        self, *, status: JobStatus | None, limit: int, cursor: str | None, owner: str | None = None
    ) -> tuple[list[Job], str | None]:
        before = int(cursor) if cursor and cursor.isdigit() else 2**62
        sql = "SELECT seq, data FROM jobs WHERE seq < ?"
        args: list[Any] = [before]
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        if status is not None:
            sql += " AND status = ?"
            args.append(status.value)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit + 1)

        def page() -> tuple[list[Job], str | None]:
            found = self.db.execute(sql, args).fetchall()
            jobs = [Job.model_validate_json(data) for _, data in found[:limit]]
            return jobs, str(found[limit - 1][0]) if len(found) > limit else None

        return await self._run(page)

    def _counts(self) -> dict[JobStatus, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        found = {JobStatus(status): number for status, number in rows}
        return {status: found.get(status, 0) for status in JobStatus}

    async def counts(self) -> dict[JobStatus, int]:
        return await self._run(self._counts)

    async def queue_stats(self, *, live_since: float) -> QueueStats:
        def read() -> QueueStats:
            oldest = self.db.execute(
                "SELECT json_extract(data, '$.created_at') FROM jobs WHERE status=?"
                " ORDER BY seq LIMIT 1",
                (_QUEUED,),
            ).fetchone()
            # `is_retrying`, over the live jobs only (the status index finds them).
            (retrying,) = self.db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN (?1, ?2)"
                " AND json_extract(data, '$.attempts') > (CASE status WHEN ?1 THEN 0 ELSE 1 END)",
                (_QUEUED, _RUNNING),
            ).fetchone()
            (live,) = self.db.execute(
                "SELECT COUNT(*) FROM workers WHERE seen_at >= ?", (live_since,)
            ).fetchone()
            return QueueStats(
                counts=self._counts(),
                oldest_queued_at=float(oldest[0]) if oldest else None,
                retrying=int(retrying),
                live_workers=int(live),
            )

        return await self._run(read)

    async def sweep(self, *, older_than: float) -> list[Job]:
        placeholders = ",".join("?" * len(_TERMINAL))

        def work() -> list[Job]:
            rows = self.db.execute(
                f"SELECT data FROM jobs WHERE status IN ({placeholders}) AND finished_at < ?",  # noqa: S608
                (*_TERMINAL, older_than),
            )
            gone = [Job.model_validate_json(data) for (data,) in rows.fetchall()]
            for job in gone:
                self.db.execute("DELETE FROM jobs WHERE id=?", (job.id,))
                self.db.execute("DELETE FROM events WHERE job_id=?", (job.id,))
            return gone

        return await self._transaction(work)

    # ---- queue ---------------------------------------------------------------------------
    async def submit(self, job: Job, *, max_queued: int, max_active: int | None = None) -> Job:
        def work() -> Job:
            if job.idempotency_key is not None:
                existing = self._one(
                    "SELECT data FROM jobs WHERE owner=? AND idempotency_key=?",
                    job.owner,
                    job.idempotency_key,
                )
                if existing is not None:
                    if existing.request_hash != job.request_hash:
                        raise IdempotencyConflict(job.idempotency_key)
                    return existing
            if max_active is not None:
                (active,) = self.db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE owner=? AND status IN (?, ?)",
                    (job.owner, _QUEUED, _RUNNING),
                ).fetchone()
                if active >= max_active:
                    raise OwnerAtLimit(int(active))
            (queued,) = self.db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status=?", (_QUEUED,)
            ).fetchone()
            if queued >= max_queued:
                raise QueueFull(int(queued))
            self.db.execute(
                "INSERT INTO jobs (id, status, not_before, owner, idempotency_key, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.status.value,
                    job.not_before,
                    job.owner,
                    job.idempotency_key,
                    job.model_dump_json(),
                ),
            )
            self._append(job.id, QUEUED_EVENT)
            return job

        stored = await self._transaction(work)
        if stored is job:  # queued now (not an earlier job of the same idempotency key)
            self._signal.wake()
        return stored

    async def position(self, job_id: str) -> int | None:
        def rank() -> int | None:
            # One statement: a job claimed meanwhile cannot get a number.
            row = self.db.execute(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE status=?1 AND seq < q.seq) FROM jobs q"
                " WHERE q.id=?2 AND q.status=?1",
                (_QUEUED, job_id),
            ).fetchone()
            return int(row[0]) if row else None

        return await self._run(rank)

    async def claim(self, worker_id: str, *, now: float) -> Job | None:
        def look_then_claim() -> tuple[Job | None, float | None]:
            # Look without the write lock first: most looks of an idle worker find nothing.
            if self.db.execute(
                "SELECT 1 FROM jobs WHERE status=? AND not_before <= ? LIMIT 1", (_QUEUED, now)
            ).fetchone():
                return self._in_transaction(self._claim, worker_id, now), None
            # Queued but backing off (the status index finds them; they are few): when the
            # first comes due, the idle worker's wait ends.
            (next_due,) = self.db.execute(
                "SELECT MIN(not_before) FROM jobs WHERE status=?", (_QUEUED,)
            ).fetchone()
            return None, next_due

        # Marked before the look: a write after it, which the look may have missed, wakes.
        self._signal.looking()
        self._wal_looked = self._wal_mark()
        job, next_due = await self._run(look_then_claim)
        if job is None:
            self._signal.claimed_nothing(next_due=next_due, now=now)
        return job

    def _claim(self, worker_id: str, now: float) -> Job | None:
        job = self._one(
            "SELECT data FROM jobs WHERE status=? AND not_before <= ? ORDER BY seq LIMIT 1",
            _QUEUED,
            now,
        )
        if job is None:
            return None
        job = job.model_copy(
            update={
                "status": JobStatus.RUNNING,
                "attempts": job.attempts + 1,
                "worker_id": worker_id,
                "started_at": job.started_at or now,
                "heartbeat_at": now,
                "updated_at": now,
            }
        )
        self._save(job)
        self._append(job.id, started_event(job))
        return job

    async def wait_for_work(self, timeout: float) -> None:
        await self._signal.wait(timeout, changed=self._wal_changed, every=CHANGE_CHECK_S)

    def _wal_mark(self) -> WalMark:
        if self._wal is None:
            return None
        try:
            found = os.stat(self._wal)
        except OSError:  # not in WAL mode (a file system without it), or not yet written
            return None
        return found.st_ino, found.st_size, found.st_mtime_ns

    def _wal_changed(self) -> bool:
        """Whether the database may have changed since the last claim looked; this
        process's own writes count too (a spare look, no harm)."""
        return self._wal is not None and self._wal_mark() != self._wal_looked

    async def heartbeat(self, job_id: str, worker_id: str, *, now: float) -> Job | None:
        def work() -> Job | None:
            job = self._owned(job_id, worker_id)
            if job is None:
                return None
            job = job.model_copy(update={"heartbeat_at": now})
            self._save(job)
            return job

        return await self._transaction(work)

    async def report(self, job_id: str, worker_id: str, **report: Unpack[Report]) -> bool:
        update, events = reported_fields(report), report["events"]
        return await self._transaction(self._change_owned, job_id, worker_id, update, events)

    async def finish(self, job_id: str, worker_id: str, **ending: Unpack[Ending]) -> bool:
        update, events = finished_fields(ending), ending.get("events", ())
        return await self._transaction(self._change_owned, job_id, worker_id, update, events)

    async def finish_and_claim(
        self, job_id: str, worker_id: str, **ending: Unpack[Ending]
    ) -> tuple[bool, Job | None]:
        update, events, now = finished_fields(ending), ending.get("events", ()), ending["now"]

        def work() -> tuple[bool, Job | None]:
            owned = self._change_owned(job_id, worker_id, update, events)
            return owned, self._claim(worker_id, now)

        return await self._transaction(work)

    async def retry(
        self, job_id: str, worker_id: str, *, now: float, not_before: float, error: ErrorBody
    ) -> Job | None:
        def work() -> Job | None:
            job = self._owned(job_id, worker_id)
            if job is None:
                return None
            job = requeued_or_failed(job, now=now, not_before=not_before, error=error)
            self._save(job)
            return job

        after = await self._transaction(work)
        if after is not None and after.status is JobStatus.QUEUED:
            self._signal.wake()  # an idle worker learns when it comes due
        return after

    async def cancel(self, job_id: str, *, now: float) -> Job | None:
        def work() -> Job | None:
            job = self._one("SELECT data FROM jobs WHERE id=?", job_id)
            if job is None or job.status.is_terminal:
                return job
            if job.status is JobStatus.QUEUED:
                job = job.model_copy(
                    update={"status": JobStatus.CANCELLED, "finished_at": now, "updated_at": now}
                )
            else:
                job = job.model_copy(update={"cancel_requested": True, "updated_at": now})
            self._save(job)
            return job

        return await self._transaction(work)

    async def recover(self, *, now: float, visibility_timeout: float) -> list[Job]:
        def work() -> list[Job]:
            rows = self.db.execute(
                "SELECT data FROM jobs WHERE status=? AND heartbeat_at < ?",
                (_RUNNING, now - visibility_timeout),
            )
            stale = [Job.model_validate_json(data) for (data,) in rows.fetchall()]
            recovered = []
            for job in stale:
                job = requeued_or_failed(job, now=now, not_before=now, error=WORKER_LOST)
                self._save(job)
                recovered.append(job)
            return recovered

        recovered = await self._transaction(work)
        if any(job.status is JobStatus.QUEUED for job in recovered):
            self._signal.wake()
        return recovered

    # ---- workers -------------------------------------------------------------------------
    async def worker_seen(self, worker_id: str, *, now: float, forget_before: float) -> None:
        def work() -> None:
            self.db.execute(
                "INSERT INTO workers (id, seen_at) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                (worker_id, now),
            )
            self.db.execute("DELETE FROM workers WHERE seen_at < ?", (forget_before,))

        await self._transaction(work)

    async def worker_gone(self, worker_id: str) -> None:
        await self._run(self.db.execute, "DELETE FROM workers WHERE id=?", (worker_id,))

    # ---- events --------------------------------------------------------------------------
    async def append(self, job_id: str, event: JobEvent) -> int:
        return await self._transaction(self._append, job_id, event)

    async def read(self, job_id: str, *, after: int) -> list[tuple[int, JobEvent]]:
        def rows() -> list[tuple[int, JobEvent]]:
            found = self.db.execute(
                "SELECT id, data FROM events WHERE job_id=? AND id>? ORDER BY id", (job_id, after)
            )
            return [(int(event_id), decode_event(data)) for event_id, data in found]

        return await self._run(rows)
