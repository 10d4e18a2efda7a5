"""The newer Qwen pipelines through the gateway, with their tiny random builds (real
diffusers classes): Qwen-Image-Edit-Plus reading several input images, Qwen-Image's
text-to-image and inpaint, Qwen-Image-Edit's inpaint, and previews for their packed
latents."""

from __future__ import annotations

import httpx
import numpy as np
from PIL import Image

from tests.generation.helpers import generate, image_of, pixels, sse_events
from tests.support.images import b64, decode_b64, disk_mask, noise_image

PLUS = "tiny-random-qwen-edit-plus"


def test_edit_plus_reads_every_input_image(api: httpx.Client) -> None:
    first, second, other = (b64(noise_image(64, 48, seed=s)) for s in (1, 2, 3))
    both = generate(api, model=PLUS, prompt="put them together", input_images=[first, second],
                    seed=4, num_images=2)  # fmt: skip
    assert both["model"] == PLUS and both["mode"] == "edit"
    assert [image_of(both, i).size for i in range(2)] == [(64, 48), (64, 48)]
    assert [image["seed"] for image in both["images"]] == [4, 5]
    again = generate(api, model=PLUS, prompt="put them together", input_images=[first, second],
                     seed=4)  # fmt: skip
    assert np.abs(pixels(both) - pixels(again)).max() <= 1  # image 0 alone, same seed
    # The second image is read: another one in its place changes the result.
    swapped = generate(api, model=PLUS, prompt="put them together", input_images=[first, other],
                       seed=4)  # fmt: skip
    assert np.abs(pixels(both) - pixels(swapped)).mean() > 0
    alone = generate(api, model=PLUS, prompt="put them together", input_image=first, seed=4)
    assert np.abs(pixels(both) - pixels(alone)).mean() > 0


def test_edit_plus_requests_never_share_a_call(api: httpx.Client) -> None:
    import concurrent.futures

    image = b64(noise_image(64, 64, seed=1))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(
            lambda seed: generate(api, model=PLUS, prompt="x", input_images=[image, image],
                                  seed=seed),
            range(3),
        ))  # fmt: skip
    # The pipeline takes one prompt per call: each request ran alone.
    assert [result["batch_requests"] for result in results] == [1, 1, 1]


def test_input_images_are_refused_where_they_cannot_be_read(api: httpx.Client) -> None:
    image = b64(noise_image(64, 64))
    cases = [
        ({"prompt": "x", "input_images": [image, image]}, "input_images"),  # an SD model
        ({"prompt": "x", "model": PLUS, "input_image": image, "input_images": [image]},
         "input_images"),
        ({"prompt": "x", "model": PLUS, "input_images": [image, "not an image"]},
         "input_images[1]"),
        ({"prompt": "x", "model": PLUS, "input_images": [image] * 5}, "input_images"),
    ]  # fmt: skip
    for body, field in cases:
        response = api.post("/api/generate", json=body, timeout=60)
        assert response.status_code == 422, (body.keys(), response.text)
        assert response.json()["error"]["details"][0]["field"] == field


def test_qwen_image_text_to_image_and_inpaint(api: httpx.Client) -> None:
    made = generate(api, model="tiny-random-qwen-image", prompt="a red boat", width=96,
                    height=64, seed=3)  # fmt: skip
    assert made["mode"] == "text-to-image" and image_of(made).size == (96, 64)
    source = noise_image(64, 64, seed=5)
    mask = Image.fromarray(disk_mask(64, 64, 32, 32, 16), "L")
    painted = generate(api, model="tiny-random-qwen-image", prompt="a hole",
                       input_image=b64(source), mask_image=b64(mask), seed=3)  # fmt: skip
    assert painted["mode"] == "inpaint" and image_of(painted).size == (64, 64)


def test_qwen_image_edit_inpaint(api: httpx.Client) -> None:
    source = noise_image(64, 64, seed=8)
    mask = Image.fromarray(disk_mask(64, 64, 20, 20, 12), "L")
    result = generate(api, model="tiny-random-qwen-edit", prompt="make it gold",
                      input_image=b64(source), mask_image=b64(mask), seed=2)  # fmt: skip
    assert result["mode"] == "inpaint" and image_of(result).size == (64, 64)


def test_packed_latents_stream_previews(api: httpx.Client) -> None:
    body = {"model": "tiny-random-qwen-image", "prompt": "a comet", "steps": 2, "seed": 4,
            "width": 96, "height": 64, "preview_every": 1}  # fmt: skip
    with api.stream("POST", "/api/generate/stream", json=body, timeout=60) as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    previews = [data["preview"] for name, data in events if name == "progress"]
    assert len(previews) == 2 and all(previews)
    # A small picture of the whole frame: the latent grid, 1/8 of the image each way.
    assert decode_b64(previews[0]).size == (96 // 8, 64 // 8)
