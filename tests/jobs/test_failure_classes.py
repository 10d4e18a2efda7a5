"""Which failures a job retries: only those that may pass next time (item 9 of issue 16).

A failure that will certainly happen again (ComfyUI's `execution_error` of the same graph,
invalid input found late, an internal error) fails the job at once; a transient one (a
timeout, an overloaded or misbehaving upstream, out of memory) is tried again."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from easel.jobs.models import JobStatus
from tests.generation.comfyui.conftest import api, comfy_env, fake, fake_defaults
from tests.jobs.helpers import submit as submit_http
from tests.jobs.helpers import wait_for
from tests.jobs.scripted_generation import ScriptedGeneration, result, sse
from tests.jobs.test_store_conformance import submit
from tests.jobs.test_worker_stream import run_jobs
from tests.support.fake_comfyui import FakeComfyUI
from tests.support.servers import ServerProcess, start_server

__all__ = ["api", "fake", "fake_defaults"]  # fixtures of the fake ComfyUI's suite


def failed(status: int, code: str, message: str = "it broke", **details: str) -> bytes:
    error = {"code": code, "message": message, "details": details or None}
    return sse({"type": "error", "error": error, "status": status})


PERMANENT = [
    pytest.param(502, "workflow_failed", "ComfyUI failed running node 3 (KSampler)", id="exec"),
    pytest.param(422, "invalid_input", "steps: too few", id="late-invalid-input"),
    pytest.param(500, "internal_error", "generation failed: ValueError: bad", id="internal"),
    pytest.param(404, "not_found", "no such model", id="4xx"),
]
TRANSIENT = [
    pytest.param(504, "gateway_timeout", "ComfyUI did not answer", id="timeout"),
    pytest.param(502, "bad_gateway", "ComfyUI answered 500 to GET /history", id="bad-gateway"),
    pytest.param(429, "too_many_requests", "the queue is full", id="busy"),
    pytest.param(500, "internal_error", "OutOfMemoryError: CUDA out of memory", id="oom"),
]


@pytest.mark.parametrize(("status", "code", "message"), PERMANENT)
async def test_a_failure_that_will_happen_again_is_tried_once(
    store, tmp_path, status: int, code: str, message: str
) -> None:
    generation = ScriptedGeneration({"doomed": [[failed(status, code, message)]] * 3})
    (job,) = await submit(store, request={"prompt": "doomed"}, max_attempts=3)
    await run_jobs(store, tmp_path, generation)
    assert generation.asked == ["doomed"]
    ended = await store.get(job.id)
    assert ended.status is JobStatus.FAILED and ended.attempts == 1
    assert (ended.error["code"], ended.error["status"]) == (code, status)


@pytest.mark.parametrize(("status", "code", "message"), TRANSIENT)
async def test_a_transient_failure_is_tried_again(
    store, tmp_path, status: int, code: str, message: str
) -> None:
    answers = [[failed(status, code, message)], [sse(result(7))]]
    generation = ScriptedGeneration({"flaky": answers})
    (job,) = await submit(store, request={"prompt": "flaky"}, max_attempts=3)
    await run_jobs(store, tmp_path, generation)
    assert generation.asked == ["flaky"] * 2
    ended = await store.get(job.id)
    assert ended.status is JobStatus.DONE and ended.attempts == 2


async def test_comfyui_out_of_memory_in_a_node_is_transient(store, tmp_path) -> None:
    """ComfyUI reports a CUDA OOM as an `execution_error` like any other: its exception
    type tells it apart (another attempt may find the memory free)."""
    oom = failed(502, "workflow_failed", "ComfyUI failed running node 3 (KSampler): Allocation"
                 " on device", exception_type="torch.OutOfMemoryError")  # fmt: skip
    generation = ScriptedGeneration({"big": [[oom], [sse(result(7))]]})
    (job,) = await submit(store, request={"prompt": "big"}, max_attempts=3)
    await run_jobs(store, tmp_path, generation)
    assert generation.asked == ["big"] * 2
    assert (await store.get(job.id)).status is JobStatus.DONE


@pytest.fixture(scope="module")
def easel(fake: FakeComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("comfyui-failures")
    server = start_server("all", tmp, comfy_env(fake, tmp))
    try:
        yield server
    finally:
        server.stop()


def test_a_workflow_whose_node_fails_is_sent_to_comfyui_once(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    fake.fail_classes["KSampler"] = "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"
    seed = 424242
    body = {"prompt": "broken", "steps": 2, "seed": seed, "width": 64, "height": 64}
    view = wait_for(api, submit_http(api, body), "failed", "done")
    assert view["status"] == "failed", view
    assert view["error"]["code"] == "workflow_failed" and view["attempts"] == 1
    assert "mat1 and mat2" in view["error"]["message"]
    sent = [p for p in fake.prompts if p["prompt"]["3"]["inputs"].get("seed") == seed]
    assert len(sent) == 1
