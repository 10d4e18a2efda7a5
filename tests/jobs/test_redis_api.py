"""The job service on the Redis backend, through real processes: a job manager and two
`easel worker` processes share one Redis; a worker is killed mid-job and Redis itself is
restarted mid-run, and every job still ends exactly once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.generation.helpers import sse_events
from tests.jobs.helpers import WAIT, submit, wait_for
from tests.support.servers import start_server, start_worker

LONG = {"prompt": "a long one", "steps": 40, "width": 512, "height": 512, "seed": 1}


def test_redis_backed_jobs_survive_a_killed_worker_and_a_redis_restart(
    tmp_path: Path, start_redis
) -> None:
    redis = start_redis("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path))
    env = {
        "EASEL_JOBS_BACKEND": "redis",
        "EASEL_REDIS_URL": redis.url,
        "EASEL_JOBS_IN_PROCESS_WORKER": "false",
        "EASEL_JOBS_HEARTBEAT": "0.2",
        "EASEL_JOBS_VISIBILITY_TIMEOUT": "1.5",
        "EASEL_JOBS_RETRY_BACKOFF": "0",
    }
    server = start_server("all", tmp_path, env=env)
    worker_env = {**env, "EASEL_GENERATION_URL": server.url}
    workers = [start_worker(tmp_path, worker_env)]
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT) as api:
            quick = submit(api, {"prompt": "quick", "steps": 2, "seed": 3})
            assert wait_for(api, quick, "done")["attempts"] == 1

            long_job = submit(api, LONG)
            wait_for(api, long_job, "running")
            while api.get(f"/api/generate/status/{long_job}").json()["progress"]["step"] < 2:
                pass
            workers[0].kill()  # SIGKILL mid-job
            redis.stop()  # and Redis goes away while the job is orphaned
            redis.start()  # same port, same append-only file
            workers.append(start_worker(tmp_path, worker_env))
            view = wait_for(api, long_job, "done")
            assert view["attempts"] == 2
            with api.stream("GET", f"/api/generate/events/{long_job}") as response:
                names = [name for name, _ in sse_events(response)]
            assert names.count("result") == 1
            assert api.get(f"/api/generate/result/{quick}").status_code == 200
            health = api.get("/api/system/health").json()["services"]["job_manager"]
            assert health["detail"]["backend"] == "redis"
            assert health["detail"]["jobs"]["done"] == 2
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
