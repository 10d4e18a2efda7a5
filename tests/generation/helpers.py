"""Helpers for generation tests: requests, decoded outputs, service state via the gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
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
    """Requests that must not share a call, sent at once: each ran alone, and got what it
    gets alone. Their concurrent results."""
    alone = [generate(api, **body) for body in bodies]
    together = asyncio.run(post_all(url, bodies))
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
