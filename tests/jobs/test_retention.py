"""Finished jobs and their images are removed after the retention period."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.jobs.helpers import WAIT, submit, wait_for
from tests.support.servers import start_server


def test_jobs_and_images_are_removed_after_retention(tmp_path: Path) -> None:
    env = {"EASEL_JOBS_RETENTION": "1", "EASEL_JOBS_HEARTBEAT": "0.2"}
    server = start_server("all", tmp_path, env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT) as api:
            task_id = submit(api, {"prompt": "brief", "steps": 2, "seed": 1})
            wait_for(api, task_id, "done")
            results = tmp_path / "data" / "results"
            assert [p for p in results.rglob("*") if p.is_file()]
            deadline = time.monotonic() + WAIT
            while api.get(f"/api/generate/status/{task_id}").status_code != 404:
                assert time.monotonic() < deadline, "the job was never removed"
                time.sleep(0.1)
            assert api.get(f"/api/generate/result/{task_id}").status_code == 404
            assert not [p for p in results.rglob("*") if p.is_file()]
    finally:
        server.stop()
