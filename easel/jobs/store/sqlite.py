"""The SQLite job store: one WAL file under the data dir, shared by processes on a machine.

The whole job is stored as JSON; the columns beside it exist to be queried. Every
read-modify-write runs in `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so
two workers (threads or processes) can never claim the same job.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiosqlite

from easel.jobs.models import Job, JobStatus
from easel.jobs.store.base import (
    IdempotencyConflict,
    QueueFull,
    requeued_or_failed,
    started_event,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    finished_at REAL,
    worker_id TEXT,
    heartbeat_at REAL,
    idempotency_key TEXT UNIQUE,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, id)
);
"""
_TERMINAL = tuple(status.value for status in JobStatus if status.is_terminal)


class SQLiteJobStore:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.db = connection
        # One connection runs one transaction at a time; coroutines sharing it take turns.
        # Other connections (processes) are kept out by SQLite's own write lock.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SQLiteJobStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, timeout=30, isolation_level=None)
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA busy_timeout=30000")
        await connection.executescript(SCHEMA)
        return cls(connection)

    async def close(self) -> None:
        await self.db.close()

    # ---- helpers -------------------------------------------------------------------------
    async def _one(self, sql: str, *args: Any) -> Job | None:
        async with self.db.execute(sql, args) as cursor:
            row = await cursor.fetchone()
        return Job.model_validate_json(row[0]) if row else None

    async def _save(self, job: Job) -> None:
        await self.db.execute(
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

    async def _owned(self, job_id: str, worker_id: str) -> Job | None:
        return await self._one(
            "SELECT data FROM jobs WHERE id=? AND worker_id=? AND status=?",
            job_id,
            worker_id,
            JobStatus.RUNNING.value,
        )

    # ---- records -------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        return await self._one("SELECT data FROM jobs WHERE id=?", job_id)

    async def list_jobs(
        self, *, status: JobStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        before = int(cursor) if cursor and cursor.isdigit() else 2**62
        sql = "SELECT seq, data FROM jobs WHERE seq < ?"
        args: list[Any] = [before]
        if status is not None:
            sql += " AND status = ?"
            args.append(status.value)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit + 1)
        async with self.db.execute(sql, args) as rows:
            found = list(await rows.fetchall())
        jobs = [Job.model_validate_json(data) for _, data in found[:limit]]
        next_cursor = str(found[limit - 1][0]) if len(found) > limit else None
        return jobs, next_cursor

    async def counts(self) -> dict[JobStatus, int]:
        async with self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status") as rows:
            found = {JobStatus(status): count for status, count in await rows.fetchall()}
        return {status: found.get(status, 0) for status in JobStatus}

    async def sweep(self, *, older_than: float) -> list[Job]:
        placeholders = ",".join("?" * len(_TERMINAL))

        async def work() -> list[Job]:
            async with self.db.execute(
                f"SELECT data FROM jobs WHERE status IN ({placeholders}) AND finished_at < ?",  # noqa: S608
                (*_TERMINAL, older_than),
            ) as rows:
                gone = [Job.model_validate_json(data) for (data,) in await rows.fetchall()]
            for job in gone:
                await self.db.execute("DELETE FROM jobs WHERE id=?", (job.id,))
                await self.db.execute("DELETE FROM events WHERE job_id=?", (job.id,))
            return gone

        result: list[Job] = await self._transaction(work)
        return result

    # ---- queue ---------------------------------------------------------------------------
    async def submit(self, job: Job, *, max_queued: int) -> Job:
        async def work() -> Job:
            if job.idempotency_key is not None:
                existing = await self._one(
                    "SELECT data FROM jobs WHERE idempotency_key=?", job.idempotency_key
                )
                if existing is not None:
                    if existing.request_hash != job.request_hash:
                        raise IdempotencyConflict(job.idempotency_key)
                    return existing
            async with self.db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status=?", (JobStatus.QUEUED.value,)
            ) as rows:
                row = await rows.fetchone()
            queued = int(row[0]) if row else 0
            if queued >= max_queued:
                raise QueueFull(queued)
            await self.db.execute(
                "INSERT INTO jobs (id, status, not_before, idempotency_key, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.status.value,
                    job.not_before,
                    job.idempotency_key,
                    job.model_dump_json(),
                ),
            )
            return job

        result: Job = await self._transaction(work)
        return result

    async def position(self, job_id: str) -> int | None:
        # One statement: a job claimed meanwhile cannot get a number.
        async with self.db.execute(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE status=?1 AND seq < q.seq) FROM jobs q"
            " WHERE q.id=?2 AND q.status=?1",
            (JobStatus.QUEUED.value, job_id),
        ) as rows:
            row = await rows.fetchone()
        return int(row[0]) if row else None

    async def _transaction(self, work: Any) -> Any:
        """Run `work()` (a coroutine function) under SQLite's write lock.

        Shielded: a caller cancelled mid-way (a job cancelled or timed out while recording
        progress) must not leave BEGIN without COMMIT/ROLLBACK on the shared connection,
        as every later transaction would then fail. The transaction finishes in its own
        task; the caller still sees its cancellation."""
        return await asyncio.shield(self._locked_transaction(work))

    async def _locked_transaction(self, work: Any) -> Any:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                outcome = await work()
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            return outcome

    async def claim(self, worker_id: str, *, now: float) -> Job | None:
        # Idle workers poll often: look without the write lock first.
        async with self.db.execute(
            "SELECT 1 FROM jobs WHERE status=? AND not_before <= ? LIMIT 1",
            (JobStatus.QUEUED.value, now),
        ) as rows:
            if await rows.fetchone() is None:
                return None

        async def work() -> Job | None:
            job = await self._one(
                "SELECT data FROM jobs WHERE status=? AND not_before <= ? ORDER BY seq LIMIT 1",
                JobStatus.QUEUED.value,
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
            await self._save(job)
            await self._append(job.id, started_event(job))
            return job

        result: Job | None = await self._transaction(work)
        return result

    async def heartbeat(self, job_id: str, worker_id: str, *, now: float) -> Job | None:
        async def work() -> Job | None:
            job = await self._owned(job_id, worker_id)
            if job is None:
                return None
            job = job.model_copy(update={"heartbeat_at": now})
            await self._save(job)
            return job

        result: Job | None = await self._transaction(work)
        return result

    async def progress(
        self,
        job_id: str,
        worker_id: str,
        *,
        step: int,
        total: int,
        event: dict[str, Any] | None = None,
    ) -> bool:
        async def work() -> bool:
            job = await self._owned(job_id, worker_id)
            if job is None:
                return False
            await self._save(
                job.model_copy(update={"progress_step": step, "progress_total": total})
            )
            if event is not None:
                await self._append(job_id, event)
            return True

        result: bool = await self._transaction(work)
        return result

    async def finish(
        self,
        job_id: str,
        worker_id: str,
        *,
        status: JobStatus,
        now: float,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
    ) -> bool:
        if not status.is_terminal:
            raise ValueError(f"finish needs a terminal status, not {status}")

        async def work() -> bool:
            job = await self._owned(job_id, worker_id)
            if job is None:
                return False
            await self._save(
                job.model_copy(
                    update={
                        "status": status,
                        "finished_at": now,
                        "updated_at": now,
                        "result": result,
                        "error": error,
                    }
                )
            )
            if event is not None:
                await self._append(job_id, event)
            return True

        done: bool = await self._transaction(work)
        return done

    async def retry(
        self, job_id: str, worker_id: str, *, now: float, not_before: float, error: dict[str, Any]
    ) -> Job | None:
        async def work() -> Job | None:
            job = await self._owned(job_id, worker_id)
            if job is None:
                return None
            job = requeued_or_failed(job, now=now, not_before=not_before, error=error)
            await self._save(job)
            return job

        result: Job | None = await self._transaction(work)
        return result

    async def cancel(self, job_id: str, *, now: float) -> Job | None:
        async def work() -> Job | None:
            job = await self.get(job_id)
            if job is None or job.status.is_terminal:
                return job
            if job.status is JobStatus.QUEUED:
                job = job.model_copy(
                    update={"status": JobStatus.CANCELLED, "finished_at": now, "updated_at": now}
                )
            else:
                job = job.model_copy(update={"cancel_requested": True, "updated_at": now})
            await self._save(job)
            return job

        result: Job | None = await self._transaction(work)
        return result

    async def recover(self, *, now: float, visibility_timeout: float) -> list[Job]:
        async def work() -> list[Job]:
            async with self.db.execute(
                "SELECT data FROM jobs WHERE status=? AND heartbeat_at < ?",
                (JobStatus.RUNNING.value, now - visibility_timeout),
            ) as rows:
                stale = [Job.model_validate_json(data) for (data,) in await rows.fetchall()]
            recovered = []
            lost = {"code": "worker_lost", "message": "the worker stopped answering"}
            for job in stale:
                job = requeued_or_failed(job, now=now, not_before=now, error=lost)
                await self._save(job)
                recovered.append(job)
            return recovered

        result: list[Job] = await self._transaction(work)
        return result

    # ---- events --------------------------------------------------------------------------
    async def append(self, job_id: str, event: dict[str, Any]) -> int:
        result: int = await self._transaction(lambda: self._append(job_id, event))
        return result

    async def _append(self, job_id: str, event: dict[str, Any]) -> int:
        """Inside a transaction: the next id of the job's log (one statement)."""
        async with self.db.execute(
            "INSERT INTO events (job_id, id, data) SELECT ?1, COALESCE(MAX(id), 0) + 1, ?2"
            " FROM events WHERE job_id=?1 RETURNING id",
            (job_id, json.dumps(event)),
        ) as rows:
            row = await rows.fetchone()
        return int(row[0]) if row else 0

    async def read(self, job_id: str, *, after: int) -> list[tuple[int, dict[str, Any]]]:
        async with self.db.execute(
            "SELECT id, data FROM events WHERE job_id=? AND id>? ORDER BY id", (job_id, after)
        ) as rows:
            return [(int(event_id), json.loads(data)) for event_id, data in await rows.fetchall()]
