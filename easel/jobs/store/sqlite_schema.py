"""The SQLite job store's tables and indexes, and the migration from the previous schema.

The whole job is stored as JSON (`data`); the columns beside it exist to be queried.
"""

from __future__ import annotations

import sqlite3

from easel.core.identity import ANONYMOUS

JOBS_TABLE = f"""
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    finished_at REAL,
    worker_id TEXT,
    heartbeat_at REAL,
    owner TEXT NOT NULL DEFAULT '{ANONYMOUS}',
    idempotency_key TEXT,
    data TEXT NOT NULL,
    UNIQUE (owner, idempotency_key)
)
"""
EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, id)
)
"""
# Workers seen alive (`worker_seen`), for the queue metrics' count of live workers.
WORKERS_TABLE = """
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
)
"""
# Listing (all, by status, by owner, by owner and status) and the owner's count of active
# jobs at submit each read one index range, in arrival (seq) order.
INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, seq);
CREATE INDEX IF NOT EXISTS jobs_by_owner_status ON jobs (owner, status, seq);
"""


def create_or_migrate(connection: sqlite3.Connection) -> None:
    """The schema on a new database; an old one's brought to it first."""
    connection.execute(JOBS_TABLE)
    connection.execute(EVENTS_TABLE)
    connection.execute(WORKERS_TABLE)
    migrate(connection)
    connection.executescript(INDEXES)


def migrate(connection: sqlite3.Connection) -> None:
    """Bring a database of the previous schema (no owner column, idempotency keys unique
    across everyone) to this one, in one transaction: another process opening it meanwhile
    waits, then finds it done. Its jobs belong to `anonymous` (as `Job.owner` reads their
    JSON back too) and keep their seq, so the arrival order holds."""
    if _has_owner(connection):
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        if not _has_owner(connection):
            # SQLite cannot drop a column's UNIQUE in place: the table is built anew.
            connection.execute("ALTER TABLE jobs RENAME TO jobs_v1")
            connection.execute(JOBS_TABLE)
            connection.execute(
                "INSERT INTO jobs (seq, id, status, not_before, finished_at, worker_id,"
                " heartbeat_at, idempotency_key, data) SELECT seq, id, status, not_before,"
                " finished_at, worker_id, heartbeat_at, idempotency_key, data FROM jobs_v1"
            )
            connection.execute("DROP TABLE jobs_v1")  # and its indexes
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _has_owner(connection: sqlite3.Connection) -> bool:
    return any(row[1] == "owner" for row in connection.execute("PRAGMA table_info(jobs)"))
