"""Queued jobs survive a job manager restart on the Redis backend, through real processes:
a job manager with no worker queues jobs in Redis and is stopped (SIGTERM), then killed
(SIGKILL) after queueing more; a new job manager on the same Redis and one `easel worker`
finish every job, each exactly once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.generation.helpers import sse_events
from tests.jobs.helpers import WAIT, submit, wait_for
from tests.support.servers import start_server, start_worker

TERMINAL = {"result", "error", "cancelled"}


def small(i: int) -> dict[str, object]:
    return {"prompt": f"job {i}", "steps": 2, "width": 64, "height": 64, "seed": i}


def queue_jobs(manager_url: str, first: int, count: int) -> list[str]:
    """Submits `count` jobs to a job manager with no worker; they all stay queued."""
    with httpx.Client(base_url=manager_url, timeout=WAIT) as api:
        detail = api.get("/api/health").json()["detail"]
        assert detail["backend"] == "redis"
        assert detail["worker"] is None
        ids = [submit(api, small(i)) for i in range(first, first + count)]
        for position, task_id in enumerate(ids, start=first):
            view = api.get(f"/api/generate/status/{task_id}").json()
            assert view["status"] == "queued"
            assert view["queue_position"] == position
        assert api.get("/api/health").json()["detail"]["jobs"]["queued"] == first + count
    return ids


def test_queued_jobs_survive_a_redis_job_manager_restart(tmp_path: Path, start_redis) -> None:
    redis = start_redis("--save", "", "--appendonly", "no")
    env = {
        "EASEL_JOBS_BACKEND": "redis",
        "EASEL_REDIS_URL": redis.url,
        "EASEL_JOBS_IN_PROCESS_WORKER": "false",
    }
    servers = [start_server("generation", tmp_path)]
    try:
        # The first job manager is stopped politely, the second one killed: neither runs a
        # job, and what they queued lives on in Redis alone.
        first = start_server("jobs", tmp_path, env=env)
        servers.append(first)
        ids = queue_jobs(first.url, 0, 3)
        first.stop()
        second = start_server("jobs", tmp_path, env=env)
        servers.append(second)
        ids += queue_jobs(second.url, 3, 3)
        second.kill()  # SIGKILL: no shutdown at all

        restarted = start_server("jobs", tmp_path, env=env)
        servers.append(restarted)
        servers.append(start_worker(tmp_path, {**env, "EASEL_GENERATION_URL": servers[0].url}))
        with httpx.Client(base_url=restarted.url, timeout=WAIT) as api:
            for task_id in ids:
                assert wait_for(api, task_id, "done")["attempts"] == 1
            for task_id in ids:
                result = api.get(f"/api/generate/result/{task_id}")
                assert result.status_code == 200, result.text
                assert len(result.json()["images"]) == 1
                with api.stream("GET", f"/api/generate/events/{task_id}") as response:
                    names = [name for name, _ in sse_events(response)]
                assert names[0] == "queued"
                assert names.count("started") == 1  # never requeued: run once
                assert [name for name in names if name in TERMINAL] == ["result"]
                assert names[-1] == "result"
            done = api.get("/api/jobs", params={"status": "done"}).json()["jobs"]
            assert sorted(job["task_id"] for job in done) == sorted(ids)
            jobs = api.get("/api/health").json()["detail"]["jobs"]
            assert jobs["done"] == len(ids)
            assert jobs["queued"] == jobs["running"] == 0
    finally:
        for server in reversed(servers):
            server.stop()
