"""One INFO line as a worker starts a job's attempt and one as it ends it: which job,
model, attempt, how long and how it ended, so a log reader can follow every job."""

from __future__ import annotations

import logging
import time

from easel.jobs.models import Job

log = logging.getLogger("easel.jobs.worker")


def job_started(job: Job, *, worker_id: str) -> float:
    """Log the start; returns the start (a monotonic time) for `job_ended`."""
    log.info(
        "job %s started: model %s, attempt %d/%d, on %s",
        job.id,
        _model(job),
        job.attempts,
        job.max_attempts,
        worker_id,
        extra={"job_id": job.id, "model": _model(job), "attempt": job.attempts},
    )
    return time.monotonic()


def job_ended(job: Job, *, outcome: str, started: float) -> None:
    """`outcome`: the status it ended with here (done, failed, cancelled), or what became
    of it (requeued, stopped)."""
    seconds = time.monotonic() - started
    log.info(
        "job %s ended: %s after %.2fs (model %s, attempt %d/%d)",
        job.id,
        outcome,
        seconds,
        _model(job),
        job.attempts,
        job.max_attempts,
        extra={
            "job_id": job.id,
            "model": _model(job),
            "attempt": job.attempts,
            "outcome": outcome,
            "duration_s": round(seconds, 3),
        },
    )


def _model(job: Job) -> str:
    return str(job.request.get("model") or "default")
