"""ControlNet per request through the HTTP API: the built-in tiny models (real diffusers
classes, random weights) with the tiny ControlNets built from their UNets, configured as a
user would in EASEL_GENERATION_CONTROLNETS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.generation.helpers import (
    WAIT,
    gathered,
    generate,
    kept_apart,
    pixels,
)
from tests.support.images import b64, scene
from tests.support.servers import ServerProcess, start_server

CONTROLNETS = {
    "tiny-canny": {"source": "builtin:tiny-random-controlnet", "family": "sd", "types": ["canny"]},
    "tiny-depth": {"source": "builtin:tiny-random-controlnet", "family": "sd", "types": ["depth"]},
    "tiny-union-xl": {
        "source": "builtin:tiny-random-controlnet-union-xl",
        "family": "sdxl",
        "union": True,
        "types": ["canny", "depth"],
    },
    "tiny-qwen": {
        "source": "builtin:tiny-random-qwen-controlnet",
        "family": "qwen-image",
        "types": ["canny", "depth"],
    },
}
SIZE = (64, 64)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    env = {
        "EASEL_GENERATION_CONTROLNETS": json.dumps(CONTROLNETS),
        # A wide window, so that requests sent together would share a call if they could.
        "EASEL_BATCH_WINDOW_MS": "400",
    }
    process = start_server("all", tmp_path_factory.mktemp("controlnet"), env=env)
    yield process
    process.stop()


@pytest.fixture()
def api(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        yield client


def edges() -> str:
    """A condition image: white edges of a few shapes on black."""
    array = np.zeros((*SIZE, 3), np.uint8)
    array[8:40, 10:12] = array[8:10, 10:50] = array[30:56, 44:46] = 255
    return b64(Image.fromarray(array, "RGB"))


BASE = {"prompt": "a house", "seed": 7, "steps": 2, "width": SIZE[0], "height": SIZE[1]}


def control(kind: str = "canny", image: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "image": image or edges(), **fields}


def differ(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) > 0.5


def test_a_control_changes_the_output_and_reproduces(api: httpx.Client) -> None:
    plain = pixels(generate(api, **BASE))
    controlled = generate(api, **BASE, control=[control()])
    assert differ(plain, pixels(controlled))
    again = pixels(generate(api, **BASE, control=[control()]))
    assert np.abs(again - pixels(controlled)).max() <= 1
    weaker = pixels(generate(api, **BASE, control=[control(strength=0.3)]))
    assert differ(weaker, pixels(controlled))


def test_preprocess_runs_the_canny_op(api: httpx.Client) -> None:
    photo = scene(*SIZE)
    op = api.post("/api/image-utils/canny", json={"image": b64(photo)})
    assert op.status_code == 200, op.text
    edge_map = op.json()["image"]
    from_photo = generate(api, **BASE, control=[control(image=b64(photo), preprocess=True)])
    from_edges = generate(api, **BASE, control=[control(image=edge_map)])
    assert np.array_equal(pixels(from_photo), pixels(from_edges))
    # ... and not the photo itself.
    unprocessed = generate(api, **BASE, control=[control(image=b64(photo))])
    assert differ(pixels(from_photo), pixels(unprocessed))


def test_two_controls_combine(api: httpx.Client) -> None:
    shapes = b64(scene(*SIZE, seed=3))
    canny = pixels(generate(api, **BASE, control=[control()]))
    depth = pixels(generate(api, **BASE, control=[control("depth", shapes)]))
    both = generate(api, **BASE, control=[control(), control("depth", shapes)])
    assert differ(pixels(both), canny) and differ(pixels(both), depth)


def test_controls_in_edit_and_inpaint(api: httpx.Client) -> None:
    photo = b64(scene(*SIZE, seed=5))
    mask = b64(Image.new("L", SIZE, 255))
    for extra in ({"input_image": photo}, {"input_image": photo, "mask_image": mask}):
        body = {**BASE, **extra, "extra_params": {"strength": 1.0}, "steps": 3}
        plain = pixels(generate(api, **body))
        controlled = generate(api, **body, control=[control()])
        assert differ(plain, pixels(controlled)), extra.keys()


def test_sdxl_union_controlnet(api: httpx.Client) -> None:
    body = {**BASE, "model": "tiny-random-xl"}
    plain = pixels(generate(api, **body))
    canny = pixels(generate(api, **body, control=[control()]))
    both = pixels(generate(api, **body, control=[control(), control("depth", end=0.5)]))
    assert differ(plain, canny) and differ(canny, both)


def test_qwen_image_controlnet(api: httpx.Client) -> None:
    body = {**BASE, "model": "tiny-random-qwen-image"}
    plain = pixels(generate(api, **body))
    canny = pixels(generate(api, **body, control=[control()]))
    both = pixels(generate(api, **body, control=[control(), control("depth", strength=0.5)]))
    assert differ(plain, canny) and differ(canny, both)
    error = refusal(api, **body, input_image=b64(scene(*SIZE)), control=[control()])
    assert fields_of(error) == ["control"]  # its ControlNet pipeline is text-to-image only


def test_without_a_size_the_control_image_sets_it(api: httpx.Client) -> None:
    body = {k: v for k, v in BASE.items() if k not in ("width", "height")}
    result = generate(api, **body, control=[control()])
    assert (result["width"], result["height"]) == SIZE


def refusal(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/generate", json={**BASE, **fields})
    assert response.status_code == 422, response.text
    return response.json()["error"]


def fields_of(error: dict[str, Any]) -> list[str]:
    return [detail["field"] for detail in error["details"]]


def test_unknown_type_names_the_field_and_the_known_types(api: httpx.Client) -> None:
    error = refusal(api, control=[control("pose")])
    assert fields_of(error) == ["control[0].type"]
    assert "canny" in error["message"] and "depth" in error["message"]


def test_a_size_other_than_the_output_names_both(api: httpx.Client) -> None:
    error = refusal(api, control=[control()], width=96)
    assert fields_of(error) == ["control[0].image"]
    assert "64x64" in error["message"] and "96x64" in error["message"]


def test_preprocess_without_a_preprocessor_is_refused(api: httpx.Client) -> None:
    error = refusal(api, control=[control("depth", preprocess=True)])
    assert fields_of(error) == ["control[0].preprocess"]


def test_more_controls_than_the_limit_are_refused(api: httpx.Client) -> None:
    error = refusal(api, control=[control()] * 4)
    assert fields_of(error) == ["control"]


def test_models_list_their_controlnets(api: httpx.Client) -> None:
    body = api.get("/api/models").json()
    models = {model["name"]: model for model in body["models"]}
    names = [net["name"] for net in models["tiny-random"]["controlnets"]]
    assert names[:2] == ["tiny-canny", "tiny-depth"]  # configured ones first
    assert "canny-sd15" in names  # the hub defaults after them
    union = next(n for n in models["tiny-random-xl"]["controlnets"] if n["name"] == "tiny-union-xl")
    assert union["union"] is True and union["types"] == ["canny", "depth"]


def test_requests_with_and_without_control_are_not_batched_together(server, api) -> None:
    kept_apart(api, server.url, [BASE, {**BASE, "control": [control()]}])


def test_same_controls_share_a_call_and_keep_their_own_images(server, api) -> None:
    other = b64(scene(*SIZE, seed=9))
    bodies = [{**BASE, "control": [control()]}, {**BASE, "control": [control(image=other)]}]
    alone = [generate(api, **body) for body in bodies]
    together = asyncio.run(gathered(server.url, bodies))  # both wait: they share a call
    assert max(result["batch_requests"] for result in together) == 2
    for single, batched in zip(alone, together, strict=True):
        assert np.abs(pixels(single) - pixels(batched)).max() <= 2
