"""Each mode end to end through the gateway, with the built-in tiny model (real diffusers
classes, random weights), in both topologies."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.generation.helpers import generate, image_of, pixels, sse_events
from tests.support.images import b64, disk_mask, noise_image


def test_text_to_image_size_format_count(api: httpx.Client) -> None:
    result = generate(api, prompt="a red fox", width=96, height=64, num_images=2, seed=5)
    assert result["mode"] == "text-to-image"
    assert result["model"] == "tiny-random"
    assert (result["width"], result["height"]) == (96, 64)
    assert len(result["images"]) == 2
    assert [image["seed"] for image in result["images"]] == [5, 6]
    for index in range(2):
        image = image_of(result, index)
        assert image.format == "PNG" and image.size == (96, 64)
    assert any("noise" in warning for warning in result["warnings"])
    timings = result["timings"]
    assert timings["inference_ms"] > 0 and timings["total_ms"] >= timings["inference_ms"]


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_output_formats(api: httpx.Client, fmt: str) -> None:
    result = generate(api, prompt="a boat", output_format=fmt, quality=80, seed=1)
    assert result["images"][0]["media_type"] == f"image/{fmt}"
    assert image_of(result).format == fmt.upper()


def test_same_seed_same_image_and_different_seeds_differ(api: httpx.Client) -> None:
    first = pixels(generate(api, prompt="a lighthouse", seed=42))
    again = pixels(generate(api, prompt="a lighthouse", seed=42))
    other = pixels(generate(api, prompt="a lighthouse", seed=43))
    assert np.abs(first - again).max() <= 1
    assert np.abs(first - other).mean() > 5


def test_random_seed_is_reported_and_reproduces(api: httpx.Client) -> None:
    result = generate(api, prompt="a hill")
    again = generate(api, prompt="a hill", seed=result["seed"])
    assert np.abs(pixels(result) - pixels(again)).max() <= 1


def test_size_is_rounded_to_the_model_multiple(api: httpx.Client) -> None:
    result = generate(api, prompt="a tree", width=70, height=100, seed=1)
    assert (result["width"], result["height"]) == (64, 96)
    assert image_of(result).size == (64, 96)
    assert any("rounded to 64x96" in warning for warning in result["warnings"])


def test_edit_keeps_the_input_size(api: httpx.Client) -> None:
    source = noise_image(80, 48, seed=3)
    result = generate(api, prompt="make it blue", input_image=b64(source), seed=2)
    assert result["mode"] == "edit"
    assert image_of(result).size == (80, 48)
    assert np.abs(pixels(result) - np.asarray(source, dtype=np.int16)).mean() > 0


def test_edit_without_prompt_is_pure_image_to_image(api: httpx.Client) -> None:
    result = generate(api, input_image=b64(noise_image(64, 64)), seed=2)
    assert result["mode"] == "edit"


def test_edit_strength_changes_the_result(api: httpx.Client) -> None:
    source = b64(noise_image(64, 64, seed=4))
    light = generate(api, prompt="x", input_image=source, seed=1, extra_params={"strength": 0.3})
    heavy = generate(api, prompt="x", input_image=source, seed=1, extra_params={"strength": 1.0})
    assert np.abs(pixels(light) - pixels(heavy)).mean() > 1


def test_inpaint_with_a_mask(api: httpx.Client) -> None:
    source = noise_image(64, 64, seed=5)
    mask = Image.fromarray(disk_mask(64, 64, 32, 32, 16), "L")
    result = generate(api, prompt="a hole", input_image=b64(source), mask_image=b64(mask), seed=3)
    assert result["mode"] == "inpaint"
    assert image_of(result).size == (64, 64)


def test_qwen_image_edit_pipeline(api: httpx.Client) -> None:
    source = b64(noise_image(64, 48, seed=6))
    result = generate(
        api, model="tiny-random-qwen-edit", prompt="make it red", input_image=source, seed=9,
        num_images=2,
    )  # fmt: skip
    assert result["model"] == "tiny-random-qwen-edit"
    assert [image_of(result, i).size for i in range(2)] == [(64, 48), (64, 48)]
    assert np.abs(pixels(result, 0) - pixels(result, 1)).mean() > 0


def test_style_presets(api: httpx.Client) -> None:
    styles = api.get("/api/generate/styles").json()["styles"]
    assert "watercolor" in styles
    plain = generate(api, prompt="a cat", seed=8)
    styled = generate(api, prompt="a cat", style="watercolor", seed=8)
    # The style rewrites the prompt, so the same seed gives another image.
    assert np.abs(pixels(plain) - pixels(styled)).mean() > 0


def test_stream_reports_queue_start_progress_then_result(api: httpx.Client) -> None:
    body = {"prompt": "a comet", "steps": 3, "seed": 4, "preview_every": 2}
    with api.stream("POST", "/api/generate/stream", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    names = [name for name, _ in events]
    assert names[:2] == ["queued", "started"]
    assert names[-1] == "result"
    progress = [data for name, data in events if name == "progress"]
    assert [(p["step"], p["total"]) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    assert [p["preview"] is not None for p in progress] == [False, True, False]
    assert events[0][1]["position"] == 0 and events[0][1]["request_id"]
    result = events[-1][1]["result"]
    assert result["seed"] == 4 and len(result["images"]) == 1
    assert np.abs(pixels(result) - pixels(generate(api, **body))).max() <= 1


def test_stream_refuses_invalid_requests_before_streaming(api: httpx.Client) -> None:
    response = api.post("/api/generate/stream", json={"prompt": "x", "steps": 0})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "steps"


def test_multipart_upload(api: httpx.Client) -> None:
    source = noise_image(64, 64, seed=7)
    import io

    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    response = api.post(
        "/api/generate",
        data={"prompt": "x", "seed": "3", "extra_params": '{"strength": 0.5}'},
        files={"input_image": ("in.png", buffer.getvalue(), "image/png")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["mode"] == "edit"


def test_builtin_tiny_sdxl(api: httpx.Client) -> None:
    result = generate(api, model="tiny-random-xl", prompt="a bridge", seed=1, steps=2)
    assert result["model"] == "tiny-random-xl"
    assert image_of(result).size == (64, 64)
