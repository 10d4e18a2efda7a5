"""What a log reader learns about jobs: each attempt's start and end from the worker, and a
warning from the job manager while jobs wait with no worker to take them."""

from __future__ import annotations

import logging

import pytest

from easel.jobs.liveness import NoWorkerWarning
from tests.jobs.scripted_generation import ScriptedGeneration, result, run_jobs, sse
from tests.jobs.test_store_conformance import NOW, submit

FAILED = {"type": "error", "error": {"code": "invalid_input", "message": "no"}, "status": 422}


async def test_a_worker_logs_each_job_start_and_end(
    store, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="easel.jobs.worker")
    (good,) = await submit(store, request={"prompt": "good", "model": "tiny-random"})
    (bad,) = await submit(store, request={"prompt": "bad"})
    generation = ScriptedGeneration({"good": [[sse(result(7))]], "bad": [[sse(FAILED)]]})
    await run_jobs(store, tmp_path, generation)
    lines = {
        (r.job_id, r.getMessage().split(":")[0].split()[-1]): r
        for r in caplog.records
        if r.name == "easel.jobs.worker" and hasattr(r, "job_id")
    }
    assert set(lines) == {(j.id, phase) for j in (good, bad) for phase in ("started", "ended")}
    assert all(r.levelno == logging.INFO for r in lines.values())
    assert lines[good.id, "started"].model == "tiny-random"
    assert lines[bad.id, "started"].model == "default"  # no model named: the default one
    assert lines[good.id, "ended"].outcome == "done"
    assert lines[bad.id, "ended"].outcome == "failed"
    assert lines[good.id, "ended"].duration_s >= 0
    assert "done after" in lines[good.id, "ended"].getMessage()


async def test_queued_jobs_with_no_worker_are_warned_about_once_per_interval(
    store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="easel.jobs")
    warning = NoWorkerWarning(after_s=60)
    assert not await warning.check(store, now=NOW)  # nothing queued
    await submit(store, count=2)
    # Checked every heartbeat; said once the queue has been stuck 60 s, then every 60 s.
    said = [await warning.check(store, now=NOW + t) for t in range(0, 200, 2)]
    assert [t for t, s in zip(range(0, 200, 2), said, strict=True) if s] == [60, 120, 180]
    # A worker claims a job: all is well again, and the count starts afresh.
    assert await store.claim("w1", now=NOW + 200) is not None
    assert not await warning.check(store, now=NOW + 300)
    messages = [r.getMessage() for r in caplog.records if r.name == "easel.jobs"]
    assert len(messages) == 3
    assert "2 job(s) queued and none running for 60s: no worker is alive" in messages[0]
