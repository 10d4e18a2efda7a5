"""Jobs outlive an outage of the generation service or its engine (item 8 of issue 16).

An unreachable generation service, or one answering 503 while its health says it cannot
generate (ComfyUI down), uses up no attempt: the job waits, watching generation's health,
and runs when it is back; the wait is bounded by `EASEL_JOBS_OUTAGE_WINDOW` (and the job's
own timeout). Timings here are small settings, never asserted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx

from easel.core.events import JobFailed, JobWaiting
from easel.core.image_store import ImageStore
from easel.jobs.models import JobStatus, Waiting
from easel.jobs.worker import Worker, WorkerConfig
from tests.generation.comfyui.conftest import comfy_env
from tests.generation.helpers import sse_events
from tests.jobs.helpers import WAIT, submit, wait_for
from tests.jobs.scripted_generation import ScriptedGeneration, result, run_jobs, sse
from tests.jobs.test_store_conformance import NOW
from tests.jobs.test_store_conformance import submit as submit_to
from tests.support.fake_comfyui import FakeComfyUI
from tests.support.servers import start_server

QUICK = WorkerConfig(retry_backoff_s=0, health_poll_s=0.01, outage_window_s=60)
UNAVAILABLE = {"code": "service_unavailable", "message": "ComfyUI at x is unreachable"}


def unavailable(retry_after: float | None = None) -> bytes:
    failed = {"type": "error", "error": UNAVAILABLE, "status": 503, "retry_after": retry_after}
    return sse(failed)


async def log_of(store, job_id: str) -> list[Any]:
    return [event for _, event in await store.read(job_id, after=0)]


async def test_an_unreachable_generation_service_is_waited_for(store, tmp_path) -> None:
    """No connection at all, for the stream and for three health polls; then it is back."""
    generation = ScriptedGeneration(
        {"patient": [[sse(result(7))]]}, health=["down", "down", "down", "down", "healthy"]
    )
    (job,) = await submit_to(store, request={"prompt": "patient"}, max_attempts=1)
    await run_jobs(store, tmp_path, generation, QUICK)
    done = await store.get(job.id)
    assert done.status is JobStatus.DONE and done.attempts == 1 and done.waiting is None
    assert generation.asked == ["patient"] and generation.health_polls == 5
    types = [event.type for event in await log_of(store, job.id)]
    assert types == ["queued", "started", "waiting", "result"]


async def test_a_503_while_generation_is_unhealthy_is_waited_for(store, tmp_path) -> None:
    """ComfyUI down: the generation service answers 503 (with Retry-After) and its health
    is degraded until ComfyUI is back."""
    answers = [[unavailable(0.01)], [unavailable(0.01)], [sse(result(7))]]
    generation = ScriptedGeneration(
        {"comfy": answers}, health=["degraded", "degraded", "healthy", "degraded", "healthy"]
    )
    (job,) = await submit_to(store, request={"prompt": "comfy"}, max_attempts=1)
    await run_jobs(store, tmp_path, generation, QUICK)
    done = await store.get(job.id)
    assert done.status is JobStatus.DONE and done.attempts == 1
    assert generation.asked == ["comfy"] * 3
    logged = await log_of(store, job.id)
    waits = [event for event in logged if isinstance(event, JobWaiting)]
    assert waits == [JobWaiting(error={**UNAVAILABLE, "status": 503}, retry_after=0.01)] * 2


async def test_a_503_while_generation_is_healthy_uses_an_attempt(store, tmp_path) -> None:
    """Not an outage of the service (say, one model that cannot load): retried as any
    transient failure, so it cannot wait forever."""
    generation = ScriptedGeneration({"odd": [[unavailable()], [sse(result(7))]]})
    (job,) = await submit_to(store, request={"prompt": "odd"}, max_attempts=2)
    await run_jobs(store, tmp_path, generation, QUICK)
    done = await store.get(job.id)
    assert done.status is JobStatus.DONE and done.attempts == 2
    assert "waiting" not in [event.type for event in await log_of(store, job.id)]


async def test_an_outage_longer_than_the_window_fails_the_job(store, tmp_path) -> None:
    generation = ScriptedGeneration({"gone": []}, health=["down"])
    config = WorkerConfig(retry_backoff_s=0, health_poll_s=0.01, outage_window_s=0.2)
    (job,) = await submit_to(store, request={"prompt": "gone"}, max_attempts=3)
    await run_jobs(store, tmp_path, generation, config)
    failed = await store.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.attempts == 1
    assert failed.error["code"] == "generation_unavailable"
    assert "unavailable for 0.2 s" in failed.error["message"]
    last = (await log_of(store, job.id))[-1]
    assert isinstance(last, JobFailed) and last.error == failed.error


async def test_a_waiting_job_says_so_and_can_be_cancelled(store, tmp_path) -> None:
    generation = ScriptedGeneration({"stuck": []}, health=["down"])
    (job,) = await submit_to(store, request={"prompt": "stuck"})
    config = WorkerConfig(heartbeat_s=0.02, health_poll_s=0.01, outage_window_s=600)
    async with generation.client() as client:
        worker = Worker(store=store, results=ImageStore(tmp_path), generation=client, config=config)
        running = asyncio.create_task(worker.run())
        try:
            waiting = await until(store, job.id, lambda j: j.waiting is not None)
            assert waiting.status is JobStatus.RUNNING and waiting.attempts == 1
            assert waiting.waiting.error["code"] == "generation_unreachable"
            await store.cancel(job.id, now=time.time())
            cancelled = await until(store, job.id, lambda j: j.status.is_terminal)
            assert cancelled.status is JobStatus.CANCELLED and cancelled.waiting is None
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def until(store, job_id: str, predicate) -> Any:
    deadline = time.monotonic() + WAIT
    while not predicate(job := await store.get(job_id)):
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.01)
    return job


async def test_the_store_keeps_a_running_job_waiting_until_it_goes_on(store) -> None:
    """Both backends: `report(waiting=...)` sets it, `waiting=None` clears it, a report
    without it leaves it, and the job's end clears it."""
    (job,) = await submit_to(store)
    await store.claim("w", now=NOW)
    waiting = Waiting(since=NOW + 1, error={"code": "service_unavailable", "message": "ü"})
    event = JobWaiting(error=waiting.error, retry_after=5)
    assert await store.report(job.id, "w", events=[event], waiting=waiting)
    assert (await store.get(job.id)).waiting == waiting
    assert await store.report(job.id, "w", events=[], progress=(1, 2))
    assert (await store.get(job.id)).waiting == waiting
    assert await store.report(job.id, "w", events=[], waiting=None)
    assert (await store.get(job.id)).waiting is None
    assert await store.report(job.id, "w", events=[], waiting=waiting)
    assert await store.finish(job.id, "w", status=JobStatus.FAILED, now=NOW + 2)
    assert (await store.get(job.id)).waiting is None
    assert (await log_of(store, job.id))[-1] == event


# ---- real processes --------------------------------------------------------------------
# Small timings: a health poll every 0.1 s, a short retry backoff, an outage window far
# longer than any wait here.
OUTAGE = {
    "EASEL_JOBS_HEALTH_POLL": "0.1",
    "EASEL_JOBS_OUTAGE_WINDOW": "300",
    "EASEL_JOBS_RETRY_BACKOFF": "0.1",
    "EASEL_JOBS_HEARTBEAT": "0.2",
}


def wait_until_waiting(api: httpx.Client, task_id: str) -> dict[str, Any]:
    """The job's status once it says it waits for the generation service; fails if the
    job ends first (as it did when its attempts were used up)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        view = api.get(f"/api/generate/status/{task_id}").json()
        assert view["status"] in ("queued", "running"), view
        if view.get("waiting"):
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {task_id} never waited: {view}")


def test_a_job_outlives_comfyui_down_for_longer_than_its_retries(tmp_path: Path) -> None:
    fake = FakeComfyUI()
    fake.start()
    env = comfy_env(fake, tmp_path, EASEL_CONNECT_TIMEOUT="0.5", **OUTAGE)
    server = start_server("all", tmp_path, env)
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT) as api:
            fake.stop()
            body = {"prompt": "patient", "steps": 2, "seed": 8, "width": 64, "height": 64}
            task_id = submit(api, body)
            view = wait_until_waiting(api, task_id)
            assert view["status"] == "running" and view["attempts"] == 1
            assert view["waiting"]["error"]["status"] == 503
            # A synchronous request still fails fast, saying when to come back.
            answer = api.post("/api/generate", json=body)
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
            # Down for longer than three attempts took before (0.5 s connect wait each,
            # 0.1 s backoff doubling): the job has kept waiting.
            time.sleep(3 * (0.5 + 0.4) + 1)
            assert api.get(f"/api/generate/status/{task_id}").json()["status"] == "running"
            fake.start()
            done = wait_for(api, task_id, "done", "failed")
            assert done["status"] == "done", done
            assert done["attempts"] == 1 and done.get("waiting") is None
            assert api.get(f"/api/generate/result/{task_id}").json()["images"]
            with api.stream("GET", f"/api/generate/events/{task_id}") as response:
                waits = [data for name, data in sse_events(response) if name == "waiting"]
            assert waits and waits[0]["retry_after"] == 5  # the generation service's word
    finally:
        server.stop()
        fake.stop()


def test_a_job_outlives_a_restart_of_the_generation_service(tmp_path: Path) -> None:
    """The generation process killed mid-job (its stream breaks; ComfyUI, here the fake,
    holds the job's prompt so that the kill lands mid-run) and started again later on the
    same port: the job waits, then runs to the end on the same attempt."""
    fake = FakeComfyUI()
    fake.start()
    env = comfy_env(fake, tmp_path)
    generation = start_server("generation", tmp_path, env)
    jobs = start_server("jobs", tmp_path, {**OUTAGE, "EASEL_GENERATION_URL": generation.url})
    try:
        with httpx.Client(base_url=jobs.url, timeout=WAIT) as api:
            fake.hold(step=2)
            body = {"prompt": "survivor", "steps": 4, "seed": 5, "width": 64, "height": 64}
            task_id = submit(api, body)
            fake.wait_held()
            generation.kill()
            view = wait_until_waiting(api, task_id)
            assert view["attempts"] == 1
            assert view["waiting"]["error"]["code"] == "generation_unreachable"
            fake.release()
            time.sleep(2)  # well past three attempts with a 0.1 s backoff doubling
            generation = start_server("generation", tmp_path, env, port=generation.port)
            done = wait_for(api, task_id, "done", "failed")
            assert done["status"] == "done", done
            assert done["attempts"] == 1
            with api.stream("GET", f"/api/generate/events/{task_id}") as response:
                types = [line[7:] for line in response.iter_lines() if line.startswith("event:")]
            assert types.count("started") == 1 and types.count("result") == 1
            assert "waiting" in types
    finally:
        jobs.stop()
        generation.stop()
        fake.stop()
