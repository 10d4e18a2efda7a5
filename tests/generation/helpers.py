"""Helpers for generation tests: requests, decoded outputs, service state via the gateway."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.support.images import decode_b64
from tests.support.waiting import ProgressDeadline

WAIT = 60.0


def generate(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/generate", json=fields, timeout=WAIT)
    assert response.status_code == 200, response.text
    return response.json()


async def post_all(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every body posted at once to `/api/generate`: the results, in order."""
    async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
        responses = await asyncio.gather(*(client.post("/api/generate", json=b) for b in bodies))
    for response in responses:
        assert response.status_code == 200, response.text
    return [response.json() for response in responses]


def kept_apart(api: httpx.Client, url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests that must not share a call, all waiting at once (`gathered`): each ran
    alone, and got what it gets alone. Their results when gathered."""
    alone = [generate(api, **body) for body in bodies]
    together = asyncio.run(gathered(url, bodies))
    assert [result["batch_requests"] for result in together] == [1] * len(bodies)
    for single, concurrent in zip(alone, together, strict=True):
        assert np.abs(pixels(single) - pixels(concurrent)).max() <= 2
    return together


def pixels(result: dict[str, Any], index: int = 0) -> np.ndarray:
    return np.asarray(decode_b64(result["images"][index]["image"]).convert("RGB"), dtype=np.int16)


def image_of(result: dict[str, Any], index: int = 0) -> Image.Image:
    return decode_b64(result["images"][index]["image"])


def generation_state(api: httpx.Client) -> dict[str, Any]:
    """The generation service's health detail, read through the gateway's system health."""
    body = api.get("/api/system/health", params={"deep": "true"}, timeout=WAIT).json()
    return body["services"]["generation"]["detail"]


def wait_until_idle(api: httpx.Client) -> dict[str, Any]:
    deadline = ProgressDeadline(WAIT)  # a queue still running steps is still moving
    while not deadline.expired():
        state = generation_state(api)
        if state["queue"]["pending"] == 0:
            return state
        deadline.observe((state["queue"]["pending"], state["queue"]["steps_run"]))
        time.sleep(0.05)
    raise AssertionError("the generation service did not become idle")


def wait_until_running(api: httpx.Client, steps_before: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = generation_state(api)
        if state["queue"]["steps_run"] > steps_before:
            return state
        time.sleep(0.02)
    raise AssertionError("no step ran")


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a server-sent event stream."""
    name, data = None, []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and name is not None:
            yield name, json.loads("\n".join(data))
            name, data = None, []


# A call of another kind that runs for seconds (150 steps at 512 px of the tiny models).
BLOCKER = {"prompt": "hold the engine", "steps": 150, "width": 512, "height": 512, "seed": 1}


async def gathered(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every body posted to `/api/generate` while a long call of another kind runs (see
    `gathered_responses`): the results, in order."""
    responses = await gathered_responses(url, bodies)
    for response in responses:
        assert response.status_code == 200, response.text
    return [response.json() for response in responses]


async def gathered_responses(
    url: str,
    bodies: list[dict[str, Any]],
    *,
    path: str = "/api/generate",
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[httpx.Response]:
    """Every body posted to `path` while a long call of another kind runs, so all are
    waiting when its slot frees (an idle engine starts the first arrival at once, alone,
    however close the others follow); that call is then cancelled. The responses, in order.
    `url`: the generation service, or a gateway in front of it."""
    blocker_id = f"blocker-{uuid.uuid4().hex}"

    async def queue(client: httpx.AsyncClient) -> dict[str, Any]:
        detail = (await client.get("/api/health")).json().get("detail") or {}
        if "queue" not in detail:  # a gateway: the generation service's, through it
            body = (await client.get("/api/system/health", params={"deep": "true"})).json()
            detail = body["services"]["generation"]["detail"]
        return dict(detail["queue"])

    async def until(
        client: httpx.AsyncClient, ready: Callable[[dict[str, Any]], bool], what: str
    ) -> None:
        deadline = time.monotonic() + WAIT
        while not ready(await queue(client)):
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.02)

    def only_the_blocker(queue: dict[str, Any]) -> bool:
        return bool(queue["running_calls"] == 1 and queue["waiting"] == 0)

    async with httpx.AsyncClient(base_url=url, timeout=WAIT, transport=transport) as client:
        headers = {"X-Request-ID": blocker_id}
        blocker = asyncio.create_task(client.post("/api/generate", json=BLOCKER, headers=headers))
        await until(client, only_the_blocker, "the long call never started")
        posts = [asyncio.create_task(client.post(path, json=body)) for body in bodies]
        await until(client, lambda q: q["waiting"] >= len(bodies), "the requests never queued")
        answer = await client.post(f"/api/generate/requests/{blocker_id}/cancel")
        assert answer.json()["cancelled"], "the long call ended before the requests gathered"
        await blocker
        return list(await asyncio.gather(*posts))
