"""`easel jobs list | status | wait | cancel | result`, in both topologies."""

from __future__ import annotations

import httpx
from PIL import Image

from tests.cli.conftest import Easel
from tests.jobs.helpers import submit, wait_for

QUICK = {"prompt": "a quiet lake", "steps": 2, "seed": 7, "num_images": 2}
# Long enough (seconds) that the cancel lands while it runs.
LONG = {"prompt": "a long one", "steps": 150, "width": 512, "height": 512, "seed": 1}


def test_a_job_is_listed_waited_for_and_its_result_written(easel: Easel, api: httpx.Client) -> None:
    task_id = submit(api, QUICK)
    waited = easel.run("jobs", "wait", task_id, "-o", "waited.png")
    assert waited.exit_code == 0, waited.output
    assert f"job {task_id[:12]}" in waited.stderr and "2/2" in waited.stderr
    assert waited.stdout.splitlines()[:2] == ["waited.png", "waited-1.png"]
    listed = easel.run("jobs", "list", "--status", "done")
    assert listed.exit_code == 0, listed.output
    assert task_id in listed.stdout and "done" in listed.stdout
    shown = easel.run("jobs", "status", task_id)
    assert shown.exit_code == 0 and "done" in shown.stdout and "2/2" in shown.stdout
    written = easel.run("jobs", "result", task_id, "-o", "result.png")
    assert written.exit_code == 0, written.output
    assert "2 images" in written.stdout and "seed 7" in written.stdout
    waited_bytes = (easel.cwd / "waited-1.png").read_bytes()
    assert (easel.cwd / "result-1.png").read_bytes() == waited_bytes
    with Image.open(easel.cwd / "result.png") as image:
        assert image.size == (64, 64)


def test_cancel_then_wait_and_result_say_so(easel: Easel, api: httpx.Client) -> None:
    task_id = submit(api, LONG)
    wait_for(api, task_id, "running")
    early = easel.run("jobs", "result", task_id)
    assert early.exit_code == 1 and "409" in early.stderr
    gave_up = easel.run("jobs", "wait", task_id, "--max-wait", "0.2")
    assert gave_up.exit_code == 2 and "did not end in time" in gave_up.stderr, gave_up.output
    cancelled = easel.run("jobs", "cancel", task_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.startswith(f"job {task_id}: ")  # running: stops at its next step
    wait_for(api, task_id, "cancelled")
    waited = easel.run("jobs", "wait", task_id)
    assert waited.exit_code == 1 and "cancelled" in waited.stderr
