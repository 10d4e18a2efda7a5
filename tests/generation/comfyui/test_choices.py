"""A request's `scheduler` and `loras` on the ComfyUI engine: written into the parameters
a workflow declares for them (KSampler's sampler_name and scheduler, a LoraLoader's
inputs), refused naming the field where the workflow declares none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from easel.generation.engines.comfyui.workflows import EXAMPLES
from tests.generation.comfyui.conftest import comfy_env
from tests.generation.comfyui.test_comfyui_api import QUICK, last_graph
from tests.generation.helpers import generate, pixels
from tests.support.fake_comfyui import FakeComfyUI
from tests.support.images import b64, noise_image
from tests.support.servers import ServerProcess, start_server


def lora_workflow() -> dict[str, Any]:
    """The shipped text-to-image graph with a LoraLoader between checkpoint and sampler."""
    graph = json.loads((EXAMPLES / "text-to-image.json").read_text())
    graph["10"] = {
        "class_type": "LoraLoader",
        "_meta": {"title": "LoRA"},
        "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "grain.safetensors",
                   "strength_model": 0.0, "strength_clip": 0.0},
    }  # fmt: skip
    graph["3"]["inputs"]["model"] = ["10", 0]
    graph["6"]["inputs"]["clip"] = graph["7"]["inputs"]["clip"] = ["10", 1]
    parameters = graph["easel"]["parameters"]
    parameters["lora"] = {
        "type": "string",
        "default": "grain.safetensors",
        "targets": [{"title": "LoRA", "input": "lora_name"}],
    }
    parameters["lora_weight"] = {
        "type": "float",
        "default": 0.0,
        "min": -4,
        "max": 4,
        "targets": [
            {"title": "LoRA", "input": "strength_model"},
            {"title": "LoRA", "input": "strength_clip"},
        ],
    }
    return graph


@pytest.fixture(scope="module")
def server(fake: FakeComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("comfyui-choices")
    env = comfy_env(fake, tmp)
    (tmp / "workflows" / "with-lora.json").write_text(json.dumps(lora_workflow()))
    process = start_server("generation", tmp, env)
    yield process
    process.stop()


@pytest.fixture()
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def refused(api: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = api.post("/api/generate", json=body)
    assert answer.status_code == 422, answer.text
    return answer.json()["error"]


def test_a_scheduler_is_written_into_the_sampler_inputs(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    result = generate(api, **QUICK, scheduler="dpmpp_2m_karras")
    sampler = last_graph(fake)["3"]["inputs"]
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("dpmpp_2m", "karras")
    assert result["scheduler"] == "dpmpp_2m_karras"
    euler_a = generate(api, **QUICK, scheduler="euler_a")
    assert last_graph(fake)["3"]["inputs"]["sampler_name"] == "euler_ancestral"
    assert (pixels(euler_a) != pixels(result)).any()


def test_schedulers_the_workflow_cannot_take_are_refused(api: httpx.Client) -> None:
    unknown = refused(api, **QUICK, scheduler="warp_drive")
    assert unknown["details"][0]["field"] == "scheduler"
    valid = unknown["details"][0]["valid"]
    assert "euler_a" in valid and "dpm2" not in valid  # dpm_2 is not among its choices
    both = refused(api, **QUICK, scheduler="euler", extra_params={"sampler_name": "heun"})
    assert both["details"][0]["field"] == "scheduler"
    undeclared = refused(api, model="invert", scheduler="euler")
    assert undeclared["details"][0]["field"] == "scheduler"
    assert "takes no scheduler" in undeclared["message"]


def test_loras_go_into_declared_slots(api: httpx.Client, fake: FakeComfyUI) -> None:
    none = generate(api, **QUICK, model="with-lora")
    grain = generate(
        api, **QUICK, model="with-lora", loras=[{"name": "glow.safetensors", "weight": 0.8}]
    )
    loader = last_graph(fake)["10"]["inputs"]
    assert (loader["lora_name"], loader["strength_model"], loader["strength_clip"]) == (
        "glow.safetensors",
        0.8,
        0.8,
    )
    assert grain["loras"] == [{"name": "glow.safetensors", "weight": 0.8}]
    assert (pixels(grain) != pixels(none)).any()
    two = [{"name": "glow.safetensors"}, {"name": "grain.safetensors"}]
    too_many = refused(api, **QUICK, model="with-lora", loras=two)
    assert too_many["details"][0]["field"] == "loras"


def test_loras_and_control_a_workflow_does_not_declare_are_refused(api: httpx.Client) -> None:
    lora = refused(api, **QUICK, loras=[{"name": "grain.safetensors"}])
    assert lora["details"][0]["field"] == "loras"
    assert "takes no LoRA" in lora["message"]
    control = [{"type": "canny", "image": b64(noise_image(64, 64))}]
    refusal = refused(api, **QUICK, control=control)
    assert refusal["details"][0]["field"] == "control"
