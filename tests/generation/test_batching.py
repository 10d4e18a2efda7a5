"""Requests that gather while a call runs share the next call when compatible (an idle engine
starts a lone request at once: `gathered` holds the engine with a long call of another
kind so that they all wait); incompatible ones never mix."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.generation.helpers import (
    WAIT,
    gathered,
    generation_state,
    pixels,
    sse_events,
)
from tests.support.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    # The window bounds how long a batch waits for the requests its last call answered;
    # the limit is 4 images.
    env = {"EASEL_BATCH_WINDOW_MS": "400", "EASEL_BATCH_MAX_IMAGES": "4"}
    process = start_server("all", tmp_path_factory.mktemp("batching"), env=env)
    yield process
    process.stop()


@pytest.fixture()
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT) as api:
        yield api


def test_compatible_requests_share_calls_and_get_their_own_images(server, client) -> None:
    api = client
    bodies = [{"prompt": f"subject {i}", "seed": 100 + i, "steps": 2} for i in range(4)]
    generate_one = lambda body: api.post("/api/generate", json=body).json()  # noqa: E731
    alone = [generate_one(body) for body in bodies]
    assert all(result["batch_requests"] == 1 for result in alone)
    assert all(result["batch_size"] == 1 for result in alone)  # one image each

    calls_before = generation_state(api)["queue"]["calls"]
    batched = asyncio.run(gathered(server.url, bodies))
    calls = generation_state(api)["queue"]["calls"] - calls_before
    assert calls == 2, f"the long call and {len(bodies)} requests took {calls} calls"
    assert [result["batch_requests"] for result in batched] == [4] * 4
    # One image per request: a call's images are its requests.
    assert all(result["batch_size"] == result["batch_requests"] for result in batched)
    for single, shared in zip(alone, batched, strict=True):
        assert shared["seed"] == single["seed"]
        # Per-image generators: batched equals alone up to float noise.
        assert np.abs(pixels(single) - pixels(shared)).max() <= 2


def test_incompatible_requests_are_not_mixed(server) -> None:
    bodies = [
        {"prompt": "a", "seed": 1, "steps": 2},
        {"prompt": "b", "seed": 2, "steps": 3},
        {"prompt": "c", "seed": 3, "steps": 2, "width": 96},
        {"prompt": "d", "seed": 4, "steps": 2},
    ]
    results = asyncio.run(gathered(server.url, bodies))
    assert [r["steps"] for r in results] == [2, 3, 2, 2]
    assert [r["width"] for r in results] == [64, 64, 96, 64]
    assert results[1]["batch_requests"] == 1  # alone: nobody shares its step count
    assert results[2]["batch_requests"] == 1  # alone: nobody shares its size
    assert results[0]["batch_requests"] == results[3]["batch_requests"] == 2


def test_batch_respects_the_image_limit(server, client) -> None:
    api = client
    bodies = [{"prompt": f"p{i}", "seed": i, "steps": 2, "num_images": 3} for i in range(2)]
    results = asyncio.run(gathered(server.url, bodies))
    # Both waiting, but 3 + 3 images exceed the limit of 4: two calls.
    assert [r["batch_requests"] for r in results] == [1, 1]
    assert [r["batch_size"] for r in results] == [3, 3]  # images: each call made three
    assert [len(r["images"]) for r in results] == [3, 3]
    assert generation_state(api)["queue"]["pending"] == 0


def test_batch_size_counts_images_and_batch_requests_requests(server, client) -> None:
    """`num_images: 2` alone is one request making two images: the stream's `started` and
    the result say so, as does the last call in the health."""
    body = {"prompt": "twins", "seed": 5, "steps": 2, "num_images": 2}
    with client.stream("POST", "/api/generate/stream", json=body) as response:
        assert response.status_code == 200
        events = dict(sse_events(response))
    assert events["started"] == {"type": "started", "batch_size": 2, "batch_requests": 1}
    result = events["result"]["result"]
    assert (result["batch_size"], result["batch_requests"], len(result["images"])) == (2, 1, 2)
    last_call = generation_state(client)["queue"]["last_call"]
    assert (last_call["batch_size"], last_call["batch_requests"]) == (2, 1)
