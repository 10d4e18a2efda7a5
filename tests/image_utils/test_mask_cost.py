"""The mask op's cost is bounded (issue 16, item 6): radii bounded by the mask's size, a grey
mask's radius by its own limit, and CPU work in a bounded pool: the service answers health
while an op runs, refuses work beyond its queue with 503, and drops queued work whose client
has gone. The app runs in-process (its lifespan run here); a gate stands in for a long op so
that ordering is observed, never time."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.types import Message

from easel.image_utils import service as service_module
from easel.image_utils.app import create_app
from easel.image_utils.settings import ImageUtilsSettings
from tests.support.images import b64, disk_mask

DEADLINE = 60.0


@asynccontextmanager
async def image_utils(**settings: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(ImageUtilsSettings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://image-utils") as api:
            yield app, api


def mask_body(width: int = 64, height: int = 48, **fields: Any) -> dict[str, Any]:
    mask = Image.fromarray(disk_mask(width, height, width // 2, height // 2, 10), "L")
    return {"mask": b64(mask), **fields}


def assert_invalid(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field
    message: str = error["message"]
    return message


@pytest.mark.parametrize("op", ["dilate", "erode", "feather"])
async def test_a_radius_over_the_masks_longer_side_is_a_422_naming_it(op: str) -> None:
    async with image_utils() as (_, api):
        allowed = await api.post("/api/image-utils/mask", json=mask_body(**{op: 64}))
        assert allowed.status_code == 200, allowed.text
        refused = await api.post("/api/image-utils/mask", json=mask_body(**{op: 65}))
        assert "64" in assert_invalid(refused, op)


async def test_the_radius_bound_is_configurable() -> None:
    async with image_utils(mask_max_radius_ratio=0.25) as (_, api):
        refused = await api.post("/api/image-utils/mask", json=mask_body(dilate=17))
        assert_invalid(refused, "dilate")
        allowed = await api.post("/api/image-utils/mask", json=mask_body(dilate=16))
        assert allowed.status_code == 200


async def test_a_grey_mask_dilated_past_its_limit_is_a_422_suggesting_threshold() -> None:
    grey = np.full((48, 64), 90, np.uint8)
    body = {"mask": b64(Image.fromarray(grey, "L"))}
    async with image_utils() as (_, api):
        refused = await api.post("/api/image-utils/mask", json={**body, "dilate": 20})
        assert "threshold" in assert_invalid(refused, "dilate")
        thresholded = {**body, "dilate": 20, "threshold": 50}
        assert (await api.post("/api/image-utils/mask", json=thresholded)).status_code == 200


class Gate:
    """Stands in for refine_mask: records each call and blocks until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls = 0

    def __call__(self, mask: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.entered.set()
        assert self.opened.wait(DEADLINE)
        return np.asarray(mask)


@pytest.fixture()
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    blocking = Gate()
    monkeypatch.setattr(service_module, "refine_mask", blocking)
    return blocking


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not condition():
            await asyncio.sleep(0.01)


async def pool_stats(api: httpx.AsyncClient) -> dict[str, int]:
    health = await api.get("/api/health")
    assert health.status_code == 200
    stats: dict[str, int] = health.json()["detail"]["pool"]
    return stats


async def test_health_answers_while_an_op_runs_and_a_full_queue_is_a_503(gate: Gate) -> None:
    async with image_utils(image_utils_workers=1, image_utils_max_waiting=0) as (_, api):
        running = asyncio.ensure_future(api.post("/api/image-utils/mask", json=mask_body(dilate=3)))
        await asyncio.to_thread(gate.entered.wait, DEADLINE)
        assert await pool_stats(api) == {"workers": 1, "running": 1, "waiting": 0}
        async with asyncio.timeout(DEADLINE):
            busy = await api.post("/api/image-utils/mask", json=mask_body(dilate=3))
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "service_unavailable"
        assert busy.headers["retry-after"] == "1"
        assert not running.done()
        gate.opened.set()
        assert (await running).status_code == 200
        assert gate.calls == 1


async def test_a_queued_op_whose_client_left_is_dropped(gate: Gate) -> None:
    async with image_utils(image_utils_workers=1, image_utils_max_waiting=1) as (app, api):
        running = asyncio.ensure_future(api.post("/api/image-utils/mask", json=mask_body(dilate=3)))
        await asyncio.to_thread(gate.entered.wait, DEADLINE)

        # A second client, spoken to in raw ASGI so that it can leave while queued.
        body = json.dumps(mask_body(dilate=3)).encode()
        left = asyncio.Event()
        sent: list[Message] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop(0)
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/image-utils/mask",
            "raw_path": b"/api/image-utils/mask",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"host", b"image-utils")],
            "client": ("127.0.0.1", 1),
            "server": ("image-utils", 80),
        }
        leaving = asyncio.ensure_future(app(scope, receive, send))
        await until_waiting(api, 1)
        left.set()
        async with asyncio.timeout(DEADLINE):
            await leaving  # it ends while the first op still holds the only worker
        assert not running.done()
        assert sent[0]["status"] == 499
        assert (await pool_stats(api))["waiting"] == 0
        gate.opened.set()
        assert (await running).status_code == 200
        assert gate.calls == 1  # the dropped op never ran


async def until_waiting(api: httpx.AsyncClient, count: int) -> None:
    async with asyncio.timeout(DEADLINE):
        while (await pool_stats(api))["waiting"] != count:
            await asyncio.sleep(0.01)


async def test_the_default_queue_takes_a_burst_of_fifty_clients() -> None:
    # The queue sheds overload, not ordinary concurrency: 50 clients at once (the gateway
    # benchmark's load) all get their answer, none a 503.
    async with image_utils() as (_, api):
        async with asyncio.timeout(DEADLINE):
            answers = await asyncio.gather(
                *(api.post("/api/image-utils/mask", json=mask_body(dilate=3)) for _ in range(50))
            )
    assert [a.status_code for a in answers] == [200] * 50
