"""A job database made by the previous schema (no owners, idempotency keys unique across
everyone) opens, keeps its jobs, their order and their events, and takes owned jobs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from easel.core.identity import ANONYMOUS
from easel.jobs.models import JobStatus
from easel.jobs.store.sqlite import SQLiteJobStore
from tests.jobs.test_store_conformance import NOW, new_job

# The schema before owners, as that version wrote it.
OLD_SCHEMA = """
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


def old_database(path: Path) -> list[str]:
    """Three jobs as the previous version stored them (JSON without `owner`); their ids."""
    ids = []
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for key in ("old-key", None, None):
            job = new_job(idempotency_key=key, request_hash="h" if key else None)
            data = job.model_dump_json(exclude={"owner", "traceparent", "tracestate"})
            db.execute(
                "INSERT INTO jobs (id, status, not_before, idempotency_key, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (job.id, "queued", 0, key, data),
            )
            db.execute("INSERT INTO events VALUES (?, 1, ?)", (job.id, '{"type": "queued"}'))
            ids.append(job.id)
    return ids


async def test_an_old_database_migrates_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = old_database(path)
    # Two processes opening it at once: one migrates, the other finds it done.
    stores = await asyncio.gather(SQLiteJobStore.open(path), SQLiteJobStore.open(path))
    store = stores[0]
    try:
        listed, _ = await store.list_jobs(status=None, limit=10, cursor=None, owner=ANONYMOUS)
        assert [job.id for job in listed] == old[::-1]
        assert all(job.owner == ANONYMOUS for job in listed)
        assert (await store.get(old[0])).status is JobStatus.QUEUED
        assert [event.type for _, event in await store.read(old[1], after=0)] == ["queued"]
        # The old key is anonymous's: the same request still finds its job.
        replay = await store.submit(
            new_job(idempotency_key="old-key", request_hash="h"), max_queued=10
        )
        assert replay.id == old[0]
        # Another owner's same key is a job of its own, listed newest first after the old.
        theirs = await stores[1].submit(
            new_job(owner="alice", idempotency_key="old-key", request_hash="x"), max_queued=10
        )
        assert theirs.id not in old
        everyone, _ = await store.list_jobs(status=None, limit=10, cursor=None)
        assert [job.id for job in everyone] == [theirs.id, *old[::-1]]
        assert (await store.claim("w", now=NOW)).id == old[0]  # arrival order kept
    finally:
        for opened in stores:
            await opened.close()
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        indexes = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (events,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
    assert "owner" in columns and "jobs_v1" not in tables
    assert {"jobs_by_status", "jobs_by_owner", "jobs_by_owner_status"} <= indexes
    # The old jobs' events are kept; alice's job logged its own, the claim its `started`.
    assert events == 3 + 1 + 1
