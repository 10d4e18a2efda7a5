"""Targeted cancel with two easel jobs in flight on one ComfyUI: both share one batched
call (two prompts: one running, one pending); cancelling either stops only its prompt.

A request that finds a free call slot starts at once (continuous batching), so the two are
made to gather: a blocker call holds the only slot (`COMFYUI_MAX_QUEUED=1`) until both
wait, then is cancelled."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.generation.comfyui.conftest import comfy_env
from tests.generation.helpers import generation_state
from tests.jobs.helpers import submit, wait_for
from tests.support.fake_comfyui import FakeComfyUI, Task
from tests.support.servers import ServerProcess, start_server

BODY = {"steps": 4, "seed": 3, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def easel(fake: FakeComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two jobs at once, gathered into one call: the window closes when both are in."""
    tmp = tmp_path_factory.mktemp("comfyui-two")
    env = comfy_env(fake, tmp, EASEL_BATCH_WINDOW_MS="10000", EASEL_BATCH_MAX_IMAGES="2",
                    EASEL_WORKER_CONCURRENCY="3", EASEL_COMFYUI_MAX_QUEUED="1")  # fmt: skip
    server = start_server("all", tmp, env)
    try:
        yield server
    finally:
        server.stop()


def text_of(task: Task | None) -> str | None:
    return None if task is None else str(task.graph["6"]["inputs"]["text"])


def two_jobs_in_flight(api: httpx.Client, fake: FakeComfyUI) -> tuple[Task, str, str, str]:
    """(running task, its job, the pending prompt's id, its job)."""
    fake.hold(step=2)  # stays armed: the blocker, then the shared call's first prompt
    blocker = submit(api, {**BODY, "prompt": "blocker", "steps": 5})
    blocker_id = fake.wait_held().prompt_id
    jobs = {text: submit(api, {**BODY, "prompt": text}) for text in ("first", "second")}
    fake.wait_for(lambda: generation_state(api)["queue"]["waiting"] == 2, "both to wait")
    assert api.post(f"/api/generate/cancel/{blocker}").status_code == 200
    wait_for(api, blocker, "cancelled")
    fake.wait_for(lambda: {"prompt_id": blocker_id} in fake.interrupts, "the blocker stopped")
    fake.wait_for(lambda: text_of(fake.held_task) in jobs, "the shared call at the hold")
    running = fake.held_task
    assert running is not None
    # One call at a time (max_queued 1), yet both prompts are in ComfyUI: one shared call.
    fake.wait_for(lambda: len(fake.pending_ids()) == 1, "the second prompt queued")
    (pending_id,) = fake.pending_ids()
    running_text = running.graph["6"]["inputs"]["text"]
    pending_text = "second" if running_text == "first" else "first"
    return running, jobs[running_text], pending_id, jobs[pending_text]


def test_cancelling_the_pending_job_deletes_only_its_prompt(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    running, running_job, pending_id, pending_job = two_jobs_in_flight(api, fake)
    interrupts = len(fake.interrupts)
    assert api.post(f"/api/generate/cancel/{pending_job}").status_code == 200
    wait_for(api, pending_job, "cancelled")
    fake.wait_for(lambda: [pending_id] in fake.deletes, "the queue delete")
    assert all(body.get("prompt_id") == pending_id for body in fake.interrupts[interrupts:])
    fake.release()
    assert wait_for(api, running_job, "done", "failed")["status"] == "done"
    assert fake.entry(running.prompt_id)["status"]["status_str"] == "success"
    assert pending_id not in fake.history  # it never ran


def test_cancelling_the_running_job_interrupts_only_its_prompt(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    running, running_job, pending_id, pending_job = two_jobs_in_flight(api, fake)
    deletes, interrupts = len(fake.deletes), len(fake.interrupts)
    assert api.post(f"/api/generate/cancel/{running_job}").status_code == 200
    wait_for(api, running_job, "cancelled")
    fake.wait_for(lambda: {"prompt_id": running.prompt_id} in fake.interrupts, "the interrupt")
    assert all(body.get("prompt_id") == running.prompt_id for body in fake.interrupts[interrupts:])
    assert all(pending_id not in ids for ids in fake.deletes[deletes:])
    fake.release()
    assert wait_for(api, pending_job, "done", "failed")["status"] == "done"
    messages = fake.entry(running.prompt_id)["status"]["messages"]
    assert messages[-1][0] == "execution_interrupted"
    assert fake.entry(pending_id)["status"]["status_str"] == "success"
