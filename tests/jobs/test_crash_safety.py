"""Jobs survive their worker being killed and the job manager being restarted."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.generation.helpers import sse_events
from tests.jobs.helpers import WAIT, submit, wait_for
from tests.support.servers import start_server, start_worker
from tests.support.waiting import SLOW_MACHINE_TIMEOUT, ProgressDeadline

# Long enough (seconds) that a cancel or a kill always lands mid-run.
LONG = {"prompt": "a long one", "steps": 40, "width": 512, "height": 512, "seed": 1}
FAST_RECOVERY = {
    "EASEL_JOBS_HEARTBEAT": "0.2",
    "EASEL_JOBS_VISIBILITY_TIMEOUT": "1.5",
    "EASEL_JOBS_RETRY_BACKOFF": "0",
}


# Two runs of a 40-step job: on a loaded machine that takes minutes, and the waits below
# give up only when the job stops moving.
@pytest.mark.timeout(SLOW_MACHINE_TIMEOUT)
def test_a_job_whose_worker_is_killed_is_finished_by_another(tmp_path: Path) -> None:
    env = {**FAST_RECOVERY, "EASEL_JOBS_IN_PROCESS_WORKER": "false"}
    server = start_server("all", tmp_path, env=env)
    workers = []
    try:
        # Workers of their own, sharing the store; they generate through the gateway.
        worker_env = {**env, "EASEL_GENERATION_URL": server.url}
        workers.append(start_worker(tmp_path, worker_env))
        with httpx.Client(base_url=server.url, timeout=WAIT) as api:
            task_id = submit(api, LONG)
            deadline_view = wait_for(api, task_id, "running")
            assert deadline_view["attempts"] == 1
            started = ProgressDeadline(WAIT)
            status = f"/api/generate/status/{task_id}"
            while (step := api.get(status).json()["progress"]["step"]) < 2:
                assert not started.expired(), f"the job stalled at step {step}"
                started.observe(step)
                time.sleep(0.01)
            workers[0].kill()  # SIGKILL mid-job: no goodbye, no cleanup
            workers.append(start_worker(tmp_path, worker_env))
            view = wait_for(api, task_id, "done")
            assert view["attempts"] == 2
            result = api.get(f"/api/generate/result/{task_id}").json()
            assert len(result["images"]) == 1
            with api.stream("GET", f"/api/generate/events/{task_id}") as response:
                names = [name for name, _ in sse_events(response)]
            assert names.count("result") == 1  # exactly one result
            assert names.count("started") == 2  # one per attempt
            assert "queued" in names[1:]  # requeued when the first worker was lost
            done = api.get("/api/jobs", params={"status": "done"}).json()["jobs"]
            assert [job["task_id"] for job in done] == [task_id]
    finally:
        for worker in workers:
            worker.stop()
        server.stop()


def test_queued_jobs_survive_a_job_manager_restart(tmp_path: Path) -> None:
    quiet = {"EASEL_JOBS_IN_PROCESS_WORKER": "false"}
    server = start_server("all", tmp_path, env=quiet)
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT) as api:
            ids = [submit(api, {"prompt": f"job {i}", "steps": 2, "seed": i}) for i in range(3)]
            assert api.get(f"/api/generate/status/{ids[2]}").json()["queue_position"] == 2
    finally:
        server.stop()
    restarted = start_server("all", tmp_path, port=server.port)  # same data dir, a worker now
    try:
        with httpx.Client(base_url=restarted.url, timeout=WAIT) as api:
            for task_id in ids:
                assert wait_for(api, task_id, "done")["attempts"] == 1
                assert api.get(f"/api/generate/result/{task_id}").status_code == 200
    finally:
        restarted.stop()
