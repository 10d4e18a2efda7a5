"""Requests a pipeline cannot run are refused when they arrive, naming the field: an edit
or inpaint whose steps x strength leaves no denoising step, reckoned as diffusers does."""

from __future__ import annotations

import httpx
import pytest

from easel.core.generation_api import Mode
from easel.generation.engines.diffusers.families import FAMILIES, denoising_steps
from tests.support.images import b64, noise_image

IMAGE = b64(noise_image(64, 64))
MASK = b64(noise_image(64, 64, "L"))


def _minimum(error: dict, field: str) -> object:
    (detail,) = [d for d in error["details"] if d["field"] == field]
    return detail["minimum"]


def test_an_edit_of_one_step_at_the_default_strength_is_422_with_what_works(
    api: httpx.Client,
) -> None:
    # strength 0.75 (the default): int(1 x 0.75) = 0 denoising steps
    body = {"prompt": "x", "input_image": IMAGE, "steps": 1, "seed": 1}
    response = api.post("/api/generate", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert _minimum(error, "steps") == 2
    assert _minimum(error, "extra_params.strength") == 1.0
    assert "steps" in error["message"] and "strength" in error["message"]
    # The smallest values it names work.
    assert api.post("/api/generate", json={**body, "steps": 2}).status_code == 200
    strong = {**body, "extra_params": {"strength": 1.0}}
    assert api.post("/api/generate", json=strong).status_code == 200


def test_an_inpaint_with_a_weak_strength_names_both_minimums(api: httpx.Client) -> None:
    body = {
        "prompt": "x",
        "input_image": IMAGE,
        "mask_image": MASK,
        "steps": 3,
        "extra_params": {"strength": 0.3},
    }
    response = api.post("/api/generate", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert _minimum(error, "steps") == 4
    smallest = _minimum(error, "extra_params.strength")
    assert isinstance(smallest, float) and int(3 * smallest) == 1 and smallest < 0.34
    works = {**body, "extra_params": {"strength": smallest}}
    assert api.post("/api/generate", json=works).status_code == 200


@pytest.mark.parametrize(
    ("family", "steps", "strength", "run"),
    [
        ("sd", 1, 0.75, 0),  # int(steps x strength), as StableDiffusionImg2ImgPipeline
        ("sd", 2, 0.75, 1),
        ("sdxl", 10, 0.05, 0),
        ("sd", 10, 1.0, 10),
        ("flux", 1, 0.75, 1),  # steps - int(steps x (1 - strength)), as FluxImg2ImgPipeline
        ("flux", 10, 0.05, 1),
        ("qwen-image", 1, 0.01, 1),
        ("qwen-image", 4, 0.5, 2),
    ],
)
def test_denoising_steps_are_reckoned_as_diffusers_does(
    family: str, steps: int, strength: float, run: int
) -> None:
    assert denoising_steps(FAMILIES[family], Mode.EDIT, steps, strength) == run


def test_a_family_without_strength_runs_every_step() -> None:
    # Qwen-Image-Edit takes no strength: every step runs.
    assert denoising_steps(FAMILIES["qwen-image-edit"], Mode.EDIT, 1, None) == 1
    assert denoising_steps(FAMILIES["sd"], Mode.TEXT_TO_IMAGE, 1, None) == 1
