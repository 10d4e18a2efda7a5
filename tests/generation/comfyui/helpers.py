"""Helpers for tests of calls in flight together: an in-process generation service on the
fake ComfyUI, and waits that never block the event loop it runs on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from easel.generation.app import create_app
from easel.generation.settings import GenerationSettings
from tests.support.fake_comfyui import WAIT, FakeComfyUI, Task

T2I = {"model": "text-to-image", "prompt": "a boat", "seed": 5, "width": 64, "height": 64}


@asynccontextmanager
async def service(
    fake: FakeComfyUI, tmp: Path, max_queued: int, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    defaults: dict[str, Any] = {
        "generation_engine": "comfyui",
        "comfyui_api_url": fake.url,
        "workflows_path": tmp / "workflows",  # the shipped examples only
        "comfyui_poll_interval": 0.1,
        "comfyui_reconnect_backoff": 0.05,
        "connect_timeout": 2,
        "batch_window_ms": 0,
        "data_dir": tmp / "data",
    }
    app = create_app(GenerationSettings(**{**defaults, **settings}, comfyui_max_queued=max_queued))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://generation", timeout=WAIT * 3
        ) as client:
            yield client


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait without blocking the loop: the easel service under test runs on it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def until_waiting(api: httpx.AsyncClient, count: int) -> None:
    """Until `count` requests wait in easel's queue (none of them in a call yet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (await api.get("/api/health")).json()["detail"]["queue"]["waiting"] != count:
        assert loop.time() < deadline, f"{count} request(s) never waited in easel"
        await asyncio.sleep(0.01)


def steps_of(task_or_body: Task | dict[str, Any]) -> int:
    graph = task_or_body.graph if isinstance(task_or_body, Task) else task_or_body["prompt"]
    return int(graph["3"]["inputs"]["steps"])


def post(api: httpx.AsyncClient, steps: int, **fields: Any) -> asyncio.Task[httpx.Response]:
    body = {**T2I, "steps": steps, **fields}
    headers = {"X-Request-ID": f"steps-{steps}"}
    return asyncio.create_task(api.post("/api/generate", json=body, headers=headers))


async def held_with_pending(fake: FakeComfyUI, pending: int) -> tuple[Task, list[str]]:
    """(the held running task, the ids of the prompts queued behind it)."""
    await until(fake.is_held, "a KSampler at the hold")
    await until(lambda: len(fake.pending_ids()) == pending, f"{pending} prompt(s) queued")
    running = fake.running
    assert running is not None
    return running, fake.pending_ids()


def prompt_of(fake: FakeComfyUI, prompt_id: str) -> dict[str, Any]:
    return next(p for p in fake.prompts if p["prompt_id"] == prompt_id)
