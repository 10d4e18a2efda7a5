"""LoRA adapters per request, through the HTTP API of a generation server whose
MODELS_PATH/loras holds tiny adapters built here with peft (random `lora_B`, so each one
visibly changes the image)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.generation.helpers import WAIT, gathered, generate, kept_apart, pixels
from tests.support.servers import ServerProcess, start_server
from tests.support.tiny_lora import build_tiny_lora

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

BASE = {"prompt": "a lighthouse at dusk", "seed": 7, "steps": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("lora")
    models = tmp / "models"
    build_tiny_lora(models / "loras" / "grain.safetensors", seed=1)
    build_tiny_lora(models / "loras" / "glow" / "pytorch_lora_weights.safetensors", seed=2)
    build_tiny_lora(models / "loras" / "xl-grain.safetensors", seed=3, family="sdxl")
    build_tiny_lora(models / "mine" / "soft.safetensors", seed=4)
    configured = {
        "soft": {"source": "mine/soft.safetensors"},
        "hub-style": {"source": "someone/some-lora", "family": "sdxl"},
    }
    env = {
        "MODELS_PATH": str(models),
        "EASEL_GENERATION_LORAS": json.dumps(configured),
        "EASEL_GENERATION_MAX_LORAS": "3",
        # A wide window makes grouping independent of scheduling noise.
        "EASEL_BATCH_WINDOW_MS": "400",
        "EASEL_BATCH_MAX_IMAGES": "4",
    }
    process = start_server("generation", tmp, env=env)
    yield process
    process.stop()


@pytest.fixture()
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        yield client


def with_loras(*loras: tuple[str, float], **fields: Any) -> dict[str, Any]:
    return {**BASE, **fields, "loras": [{"name": n, "weight": w} for n, w in loras]}


def refusal(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post("/api/generate", json=body)
    assert answer.status_code == 422, answer.text
    return answer.json()["error"]


def test_a_lora_changes_the_image_and_weight_zero_is_none(api: httpx.Client) -> None:
    none = generate(api, **BASE)
    grain = generate(api, **with_loras(("grain", 1.0)))
    zero = generate(api, **with_loras(("grain", 0.0)))
    assert np.abs(pixels(grain) - pixels(none)).mean() > 2
    assert np.abs(pixels(zero) - pixels(none)).max() <= 1
    assert grain["loras"] == [{"name": "grain", "weight": 1.0}]
    assert none["loras"] == [] and zero["loras"] == []
    # Weights scale the adapter: half of it is neither none nor all of it.
    half = generate(api, **with_loras(("grain", 0.5)))
    assert np.abs(pixels(half) - pixels(none)).mean() > 1
    assert np.abs(pixels(half) - pixels(grain)).mean() > 1


def test_an_adapter_never_leaks_into_the_next_request(api: httpx.Client) -> None:
    before = generate(api, **BASE)
    generate(api, **with_loras(("glow", 1.0), ("grain", 0.7)))
    after = generate(api, **BASE)
    assert np.abs(pixels(after) - pixels(before)).max() <= 1
    # Nor one adapter of a set into a request for the other alone.
    glow_alone = generate(api, **with_loras(("glow", 1.0)))
    generate(api, **with_loras(("grain", 1.0)))
    assert (
        np.abs(pixels(generate(api, **with_loras(("glow", 1.0)))) - pixels(glow_alone)).max() <= 1
    )


def test_different_adapters_are_never_batched_and_each_gets_its_own(
    server: ServerProcess, api: httpx.Client
) -> None:
    bodies = [
        with_loras(("grain", 1.0), prompt="a red fox"),
        with_loras(("glow", 1.0), prompt="a red fox"),
    ]
    together = kept_apart(api, server.url, bodies)
    assert [result["loras"] for result in together] == [
        [{"name": "grain", "weight": 1.0}],
        [{"name": "glow", "weight": 1.0}],
    ]
    alone = [generate(api, **bodies[0])]
    # The same adapter at the same weight shares a call, and still matches alone.
    same_two = [bodies[0], {**bodies[0], "seed": 8}]  # both wait: they share a call
    same = asyncio.run(gathered(server.url, same_two))
    assert max(result["batch_requests"] for result in same) > 1
    assert np.abs(pixels(same[0]) - pixels(alone[0])).max() <= 2


def test_an_sdxl_adapter_runs_on_the_sdxl_model(api: httpx.Client) -> None:
    none = generate(api, **BASE, model="tiny-random-xl")
    grain = generate(api, **with_loras(("xl-grain", 1.0), model="tiny-random-xl"))
    assert np.abs(pixels(grain) - pixels(none)).mean() > 2


def test_a_configured_adapter_runs(api: httpx.Client) -> None:
    none = generate(api, **BASE)
    soft = generate(api, **with_loras(("soft", 1.0)))
    assert np.abs(pixels(soft) - pixels(none)).mean() > 2


def test_unknown_and_wrong_family_adapters_are_refused(api: httpx.Client) -> None:
    unknown = refusal(api, with_loras(("nope", 1.0)))
    assert unknown["details"][0]["field"] == "loras[0].name"
    assert "glow, grain, soft" in unknown["message"]
    wrong = refusal(api, with_loras(("xl-grain", 1.0)))
    assert wrong["details"][0]["field"] == "loras[0].name"
    assert "sdxl" in wrong["message"]
    twice = refusal(api, with_loras(("grain", 1.0), ("grain", 0.5)))
    assert twice["details"][0]["field"] == "loras[1].name"
    many = refusal(api, with_loras(("grain", 1.0), ("glow", 1.0), ("soft", 1.0), ("x", 1.0)))
    assert many["details"][0]["field"] == "loras"


def test_the_models_list_their_adapters(api: httpx.Client) -> None:
    models = {model["name"]: model for model in api.get("/api/models").json()["models"]}
    sd = {lora["name"]: lora for lora in models["tiny-random"]["loras"]}
    assert set(sd) == {"glow", "grain", "soft"}
    assert sd["grain"] == {"name": "grain", "family": "sd", "source": "loras/grain.safetensors"}
    assert sd["glow"]["source"] == "loras/glow/pytorch_lora_weights.safetensors"
    assert sd["soft"]["source"] == "mine/soft.safetensors"
    xl = {lora["name"]: lora for lora in models["tiny-random-xl"]["loras"]}
    assert set(xl) == {"xl-grain", "hub-style"}
    assert xl["hub-style"]["source"] == "someone/some-lora"
    assert all(not Path(lora["source"]).is_absolute() for lora in [*sd.values(), *xl.values()])
