"""Ordinary events read as ordinary log lines: a client that goes away mid-stream, a job
cancelled or taken back mid-run, a server stopped mid-job. No ERROR, no traceback.

The all-in-one app runs in this process (the gateway calling every service in-process),
so the log records of all of them are captured here.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.compose.gateway import create_gateway
from easel.compose.settings import EaselSettings
from easel.core.asgi_transport import StreamingASGITransport
from easel.core.middleware import RequestEdgeMiddleware
from easel.jobs.store.sqlite import SQLiteJobStore

# The tiny pipeline's image conversion (torch under numpy 2) warns; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

WAIT = 60.0
# Long enough (many seconds here) that a cancel or a stop always lands mid-run.
LONG = {"prompt": "a long one", "steps": 150, "width": 256, "height": 256, "seed": 1}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EASEL_") or key.endswith("_SERVICE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@asynccontextmanager
async def all_in_one(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = EaselSettings.load(
        data_dir=tmp_path / "data",
        generation_model="tiny-random",
        jobs_heartbeat=0.1,
        jobs_retry_backoff=0,
    )
    gateway = create_gateway(settings)
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


async def wait_for(client: httpx.AsyncClient, task_id: str, check: Any) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + WAIT
    while asyncio.get_running_loop().time() < deadline:
        view = (await client.get(f"/api/generate/status/{task_id}")).json()
        if check(view):
            return dict(view)
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {task_id} never got there: {view}")


def mid_run(view: dict[str, Any]) -> bool:
    progress = view.get("progress") or {}
    return view["status"] == "running" and (progress.get("step") or 0) >= 2


async def submit(client: httpx.AsyncClient) -> str:
    answer = await client.post("/api/generate/async", json=LONG)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["task_id"])


async def test_a_client_gone_mid_stream_is_one_info_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that streams on without listening for the disconnect (sse-starlette's
    sender races its listener the same way) learns of it from `send`, which raises
    OSError as ASGI 2.4 says."""

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"tick", "more_body": True})
            await asyncio.sleep(0.01)

    caplog.set_level(logging.DEBUG)
    app = RequestEdgeMiddleware(streaming, service="test")
    transport = StreamingASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        async with client.stream("POST", "/stream") as response:
            async for _ in response.aiter_bytes():
                break  # leaving the block closes the stream
        await asyncio.wait(transport.tasks, timeout=WAIT)
    access = [r for r in caplog.records if r.name == "easel.access"]
    assert crash_like(caplog.records) == []
    assert [r.getMessage().split()[-2:] for r in access] == [["(client", "disconnected)"]]
    assert access[0].levelno == logging.INFO and access[0].status == 200


def crash_like(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info or "never retrieved" in r.getMessage()
    ]


async def test_a_job_cancelled_mid_stream_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with all_in_one(tmp_path) as client:
        task_id = await submit(client)
        await wait_for(client, task_id, mid_run)
        await client.post(f"/api/generate/cancel/{task_id}")
        await wait_for(client, task_id, lambda v: v["status"] == "cancelled")
        # The generation service sees the closed stream and stops its call.
        await wait_for_idle_generation(client)
    assert crash_like(caplog.records) == []
    disconnects = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert disconnects and all(r.levelno <= logging.INFO for r in disconnects)


async def test_a_job_taken_back_mid_stream_runs_again_and_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with all_in_one(tmp_path) as client:
        task_id = await submit(client)
        await wait_for(client, task_id, mid_run)
        # As if this worker's heartbeats had stopped, another process's recovery puts the
        # job back in the queue: the worker closes its stream and claims the job again.
        other = await SQLiteJobStore.open(tmp_path / "data" / "jobs.db")
        try:
            await other.recover(now=time.time() + 1, visibility_timeout=0.5)
        finally:
            await other.close()
        await wait_for(client, task_id, lambda v: mid_run(v) and v["attempts"] >= 2)
        await client.post(f"/api/generate/cancel/{task_id}")
        await wait_for(client, task_id, lambda v: v["status"] == "cancelled")
        await wait_for_idle_generation(client)
    assert crash_like(caplog.records) == []


async def test_stopping_the_all_in_one_app_mid_job_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with all_in_one(tmp_path) as client:
        task_id = await submit(client)
        await wait_for(client, task_id, mid_run)
    # A task whose exception nobody read says so when it is collected.
    gc.collect()
    await asyncio.sleep(0)
    assert crash_like(caplog.records) == []


async def wait_for_idle_generation(client: httpx.AsyncClient) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while asyncio.get_running_loop().time() < deadline:
        health = (await client.get("/api/system/health", params={"deep": "true"})).json()
        if health["services"]["generation"]["detail"]["queue"]["pending"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the generation service did not become idle")


async def test_text_log_lines_carry_the_request_id() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from easel.core.logging import configure_logging

    async def route(request: Any) -> PlainTextResponse:
        logging.getLogger("easel.test").info("inside the route")
        return PlainTextResponse("ok")

    app = RequestEdgeMiddleware(Starlette(routes=[Route("/work", route)]), service="test")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("INFO", "text")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/work", headers={"X-Request-ID": "req-42"})
        logging.getLogger("easel.test").info("outside any request")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    inside = [line for line in lines if "inside the route" in line]
    access = [line for line in lines if "easel.access" in line]
    outside = [line for line in lines if "outside any request" in line]
    assert len(inside) == len(access) == len(outside) == 1
    assert "easel.test [req-42] inside the route" in inside[0]
    assert "easel.access [req-42] test GET /work 200" in access[0]
    assert "[" not in outside[0].split("easel.test")[1]


async def test_health_polls_log_at_debug_and_requests_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="easel.access")
    settings = EaselSettings.load(
        data_dir=tmp_path / "data", generation_model="tiny-random", generation_load="lazy"
    )
    gateway = create_gateway(settings)
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            for path in ("/api/system/health?deep=true", "/api/health", "/health", "/metrics"):
                assert (await client.get(path)).status_code == 200
            await client.get("/api/generate/styles")
    access = [r for r in caplog.records if r.name == "easel.access"]
    polls = [r for r in access if r.path != "/api/generate/styles"]
    # The gateway's lines and each in-process service's for the deep system health.
    assert len(polls) >= 8
    assert {r.levelno for r in polls} == {logging.DEBUG}
    asked = [r for r in access if r.path == "/api/generate/styles"]
    assert {r.service for r in asked} == {"gateway", "generation"}
    assert {r.levelno for r in asked} == {logging.INFO}
