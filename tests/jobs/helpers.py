"""Helpers for job tests over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.waiting import ProgressDeadline

WAIT = 60.0


def submit(api: httpx.Client, body: dict[str, Any], **headers: str) -> str:
    response = api.post("/api/generate/async", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return str(response.json()["task_id"])


def wait_for(api: httpx.Client, task_id: str, *statuses: str) -> dict[str, Any]:
    # A job that is still moving (steps, attempts, queue position) is waited for.
    deadline = ProgressDeadline(WAIT)
    while not deadline.expired():
        view = api.get(f"/api/generate/status/{task_id}").json()
        if view["status"] in statuses:
            return view
        deadline.observe(_movement(view))
        time.sleep(0.05)
    raise AssertionError(f"job {task_id} never reached {statuses}: {view}")


def _movement(view: dict[str, Any]) -> tuple[Any, ...]:
    progress = view.get("progress") or {}
    return (
        view["status"],
        progress.get("step"),
        view.get("attempts"),
        view.get("queue_position"),
    )
