"""Targeted cancel with two easel jobs in flight on one ComfyUI: both share one batched
call (two prompts: one running, one pending); cancelling either stops only its prompt."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.generation.comfyui.conftest import comfy_env
from tests.jobs.helpers import submit, wait_for
from tests.support.fake_comfyui import FakeComfyUI, Task
from tests.support.servers import ServerProcess, start_server

BODY = {"steps": 4, "seed": 3, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def easel(fake: FakeComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two jobs at once, gathered into one call: the window closes when both are in."""
    tmp = tmp_path_factory.mktemp("comfyui-two")
    env = comfy_env(fake, tmp, EASEL_BATCH_WINDOW_MS="10000", EASEL_BATCH_MAX_IMAGES="2",
                    EASEL_WORKER_CONCURRENCY="2")  # fmt: skip
    server = start_server("all", tmp, env)
    try:
        yield server
    finally:
        server.stop()


def two_jobs_in_flight(api: httpx.Client, fake: FakeComfyUI) -> tuple[Task, str, str, str]:
    """(running task, its job, the pending prompt's id, its job)."""
    fake.hold(step=2)
    jobs = {text: submit(api, {**BODY, "prompt": text}) for text in ("first", "second")}
    running = fake.wait_held()
    fake.wait_for(lambda: len(fake.pending_ids()) == 1, "the second prompt queued")
    (pending_id,) = fake.pending_ids()
    running_text = running.graph["6"]["inputs"]["text"]
    pending_text = "second" if running_text == "first" else "first"
    return running, jobs[running_text], pending_id, jobs[pending_text]


def test_cancelling_the_pending_job_deletes_only_its_prompt(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    interrupts = len(fake.interrupts)
    running, running_job, pending_id, pending_job = two_jobs_in_flight(api, fake)
    assert api.post(f"/api/generate/cancel/{pending_job}").status_code == 200
    wait_for(api, pending_job, "cancelled")
    fake.wait_for(lambda: [pending_id] in fake.deletes, "the queue delete")
    assert all(body.get("prompt_id") == pending_id for body in fake.interrupts[interrupts:])
    fake.release()
    assert wait_for(api, running_job, "done", "failed")["status"] == "done"
    assert fake.history[running.prompt_id]["status"]["status_str"] == "success"
    assert pending_id not in fake.history  # it never ran


def test_cancelling_the_running_job_interrupts_only_its_prompt(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    deletes, interrupts = len(fake.deletes), len(fake.interrupts)
    running, running_job, pending_id, pending_job = two_jobs_in_flight(api, fake)
    assert api.post(f"/api/generate/cancel/{running_job}").status_code == 200
    wait_for(api, running_job, "cancelled")
    fake.wait_for(lambda: {"prompt_id": running.prompt_id} in fake.interrupts, "the interrupt")
    assert all(body.get("prompt_id") == running.prompt_id for body in fake.interrupts[interrupts:])
    assert all(pending_id not in ids for ids in fake.deletes[deletes:])
    fake.release()
    assert wait_for(api, pending_job, "done", "failed")["status"] == "done"
    messages = fake.history[running.prompt_id]["status"]["messages"]
    assert messages[-1][0] == "execution_interrupted"
    assert fake.history[pending_id]["status"]["status_str"] == "success"
