"""Scheduler choice per request, through the HTTP API, on the built-in tiny models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.generation.helpers import WAIT, gathered, generate, kept_apart, pixels
from tests.support.images import b64, noise_image
from tests.support.servers import ServerProcess, start_server

BASE = {"prompt": "a lighthouse at dusk", "seed": 11, "steps": 3}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"EASEL_BATCH_WINDOW_MS": "400", "EASEL_BATCH_MAX_IMAGES": "4"}
    process = start_server("generation", tmp_path_factory.mktemp("schedulers"), env=env)
    yield process
    process.stop()


@pytest.fixture()
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        yield client


def listed(api: httpx.Client, model: str) -> list[str]:
    models = {entry["name"]: entry for entry in api.get("/api/models").json()["models"]}
    return models[model]["schedulers"]


def test_each_listed_scheduler_runs_and_they_differ(api: httpx.Client) -> None:
    names = listed(api, "tiny-random")
    assert {"euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc"} <= set(names)
    images = {}
    for name in names:
        result = generate(api, **BASE, scheduler=name)
        assert result["scheduler"] == name
        images[name] = pixels(result)
    # Samplers of one family may coincide in 3 steps (Euler and its Karras sigmas on a
    # tiny schedule); most pairs differ, and each differs from some other.
    distinct = {
        name: [other for other in names if np.abs(images[name] - images[other]).mean() > 1]
        for name in names
    }
    assert all(distinct.values()), distinct


def test_same_seed_and_scheduler_reproduce(api: httpx.Client) -> None:
    for name in ("euler_a", "dpmpp_2m_sde"):  # the stochastic ones draw from the seed too
        first = generate(api, **BASE, scheduler=name)
        again = generate(api, **BASE, scheduler=name)
        assert np.abs(pixels(first) - pixels(again)).max() <= 1


def test_without_a_scheduler_the_models_own_runs_and_is_named(api: httpx.Client) -> None:
    own = generate(api, **BASE)
    assert own["scheduler"] == "euler"  # the tiny model's EulerDiscreteScheduler
    named = generate(api, **BASE, scheduler="euler")
    assert np.abs(pixels(own) - pixels(named)).max() <= 1


def test_a_scheduler_does_not_leak_into_the_next_request(api: httpx.Client) -> None:
    before = generate(api, **BASE)
    other = generate(api, **BASE, scheduler="euler_a")
    after = generate(api, **BASE)
    assert np.abs(pixels(other) - pixels(before)).mean() > 1
    assert np.abs(pixels(after) - pixels(before)).max() <= 1
    assert after["scheduler"] == "euler"


def test_an_edit_takes_a_scheduler_too(api: httpx.Client) -> None:
    source = b64(noise_image(64, 64, seed=3))
    plain = generate(api, **BASE, input_image=source)
    ddim = generate(api, **BASE, input_image=source, scheduler="ddim")
    assert ddim["scheduler"] == "ddim"
    assert np.abs(pixels(ddim) - pixels(plain)).mean() > 1
    # The text-to-image pipeline shares the edit's components: still its own scheduler.
    assert generate(api, **BASE)["scheduler"] == "euler"


def test_different_schedulers_are_never_batched(server: ServerProcess, api: httpx.Client) -> None:
    bodies = [{**BASE, "scheduler": "ddim"}, {**BASE, "scheduler": "unipc"}]
    together = kept_apart(api, server.url, bodies)
    assert [result["scheduler"] for result in together] == ["ddim", "unipc"]
    same_two = [bodies[0], {**bodies[0], "seed": 12}]  # both wait: they share a call
    same = asyncio.run(gathered(server.url, same_two))
    assert max(result["batch_requests"] for result in same) > 1


def test_an_unknown_scheduler_is_refused_with_the_valid_names(api: httpx.Client) -> None:
    answer = api.post("/api/generate", json={**BASE, "scheduler": "warp_drive"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"][0]["field"] == "scheduler"
    assert "euler_a" in error["details"][0]["valid"]
    assert "dpmpp_2m_karras" in error["message"]


def test_flow_matching_models_list_their_own(api: httpx.Client) -> None:
    names = listed(api, "tiny-random-qwen-edit")
    assert names[0] == "flow_euler" and "euler" not in names
    source = b64(noise_image(64, 64, seed=3))
    edit = {**BASE, "model": "tiny-random-qwen-edit", "steps": 2, "input_image": source}
    answer = api.post("/api/generate", json={**edit, "scheduler": "euler"})
    assert answer.status_code == 422, answer.text
    assert "flow_euler" in answer.json()["error"]["message"]
    own = generate(api, **edit)
    assert own["scheduler"] == "flow_euler"
    unipc = generate(api, **edit, scheduler="flow_unipc")
    assert unipc["scheduler"] == "flow_unipc"
