"""Bad generation requests: 422 naming the field, before any work is queued."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

from tests.support.images import b64, noise_image

IMAGE = b64(noise_image(64, 64))
SMALL_MASK = b64(Image.new("L", (32, 32), 255))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "face_swap": True}, "face_swap"),  # non-goal fields are unknown
        ({"prompt": "x", "undress": True}, "undress"),
        ({"steps": 4}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x", "steps": 0}, "steps"),
        ({"prompt": "x", "steps": 151}, "steps"),
        ({"prompt": "x", "num_images": 5}, "num_images"),
        ({"prompt": "x", "width": 32}, "width"),
        ({"prompt": "x", "height": 4096}, "height"),
        ({"prompt": "x", "guidance_scale": -1}, "guidance_scale"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "mode": "upscale"}, "mode"),
        ({"prompt": "x", "output_format": "gif"}, "output_format"),
        ({"prompt": "x", "model": "no-such-model"}, "model"),
        ({"prompt": "x", "style": "no-such-style"}, "style"),
        ({"prompt": "x", "extra_params": {"bogus": 1}}, "extra_params.bogus"),
        ({"prompt": "x", "extra_params": {"strength": 2}}, "extra_params.strength"),
        ({"prompt": "x", "mode": "edit"}, "input_image"),
        ({"prompt": "x", "mode": "inpaint", "input_image": IMAGE}, "mask_image"),
        ({"prompt": "x", "mask_image": IMAGE}, "input_image"),
        ({"prompt": "x", "mode": "text-to-image", "input_image": IMAGE}, "input_image"),
        ({"prompt": "x", "input_image": "not base64!"}, "input_image"),
        ({"prompt": "x", "input_image": IMAGE, "mask_image": SMALL_MASK}, "mask_image"),
        ({"prompt": "x", "model": "tiny-random-qwen-edit"}, "mode"),
    ],
)
def test_invalid_request_names_the_field(api: httpx.Client, body: dict, field: str) -> None:
    response = api.post("/api/generate", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in [detail["field"] for detail in error["details"]], error


def test_mask_of_the_wrong_size_says_both_sizes(api: httpx.Client) -> None:
    body = {"prompt": "x", "input_image": IMAGE, "mask_image": SMALL_MASK}
    message = api.post("/api/generate", json=body).json()["error"]["message"]
    assert "32x32" in message and "64x64" in message


def test_bad_requests_queue_nothing(api: httpx.Client) -> None:
    from tests.generation.helpers import generation_state

    before = generation_state(api)["queue"]["calls"]
    for _ in range(3):
        assert api.post("/api/generate", json={"prompt": "x", "steps": 0}).status_code == 422
    assert generation_state(api)["queue"]["calls"] == before
