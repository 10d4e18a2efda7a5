"""One pipeline call of the diffusers engine, on the real tiny-random pipelines: the call
built from an EngineCall (per-image seeds, fitted inputs), run with its step callback
(progress, previews, cancel), and its flat images given back per request."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from easel.core.generation_api import Mode
from easel.generation.engines.base import (
    CallKey,
    EngineCall,
    EngineItem,
    EngineOutput,
    ItemProgress,
)
from easel.generation.engines.diffusers.calls import build_call, first_images
from easel.generation.engines.diffusers.loading import LoadedModel, LoadOptions, load_model
from easel.generation.engines.diffusers.models import CATALOGUE, compile_sizes
from easel.generation.engines.diffusers.outputs import per_item
from easel.generation.engines.diffusers.running import run_call
from tests.support.images import noise_image

# diffusers' Euler scheduler hands numpy a torch tensor the numpy 2 way deprecates; the
# servers other tests run show no warnings as errors, this process does.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

Step = tuple[int, int, list[bool]]  # step, total, per item: whether a preview came


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    cache = tmp_path_factory.mktemp("models")
    options = LoadOptions(models_path=cache, cache_dir=cache, device="cpu")
    return load_model("tiny-random", CATALOGUE["tiny-random"], options)


def item(seed: int, num_images: int, prompt: str = "a lighthouse", **fields: object) -> EngineItem:
    return EngineItem(prompt, None, seed, num_images, **fields)


def key(mode: Mode = Mode.TEXT_TO_IMAGE, steps: int = 2) -> CallKey:
    return CallKey("tiny-random", mode, 64, 64, steps=steps, guidance_scale=5.0)


def run(
    tiny: LoadedModel, call: EngineCall, cancel_at: int | None = None
) -> tuple[EngineOutput, list[Step]]:
    steps: list[Step] = []

    def progress(items: list[ItemProgress | None]) -> None:
        # One call, one schedule: every item is at the same step.
        assert all(i is not None and (i.step, i.total) == (items[0].step, items[0].total)
                   for i in items)  # fmt: skip
        first = items[0]
        assert first is not None
        steps.append((first.step, first.total, [i is not None and i.preview is not None
                                                for i in items]))  # fmt: skip

    def cancelled() -> bool:
        return cancel_at is not None and len(steps) >= cancel_at

    return run_call(tiny, call, progress, cancelled), steps


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_first_images_and_per_item_slice_the_flat_batch() -> None:
    items = [item(1, 2), item(2, 1), item(3, 3)]
    assert first_images(items) == [0, 2, 3]
    flat = [Image.new("L", (1, 1), value) for value in range(6)]
    sliced = per_item(flat, items)
    assert [[image.getpixel((0, 0)) for image in images] for images in sliced] == [
        [0, 1], [2], [3, 4, 5]
    ]  # fmt: skip


def test_a_call_has_one_generator_per_image_seeded_seed_plus_i(tiny: LoadedModel) -> None:
    call = EngineCall(key(), [item(10, 2, "first"), item(500, 1, "second")])
    built = build_call(tiny.family, tiny.pipeline(Mode.TEXT_TO_IMAGE), call)
    assert [g.initial_seed() for g in built.generators] == [10, 11, 500]
    assert built.kwargs["prompt"] == ["first", "first", "second"]
    assert (built.kwargs["width"], built.kwargs["height"]) == (64, 64)
    assert "image" not in built.kwargs


def test_edit_inputs_are_fitted_to_the_call_size(tiny: LoadedModel) -> None:
    image, mask = noise_image(96, 80), noise_image(96, 80, "L")
    call = EngineCall(key(Mode.INPAINT), [item(1, 2, input_image=image, mask_image=mask)])
    built = build_call(tiny.family, tiny.pipeline(Mode.INPAINT), call)
    assert [i.size for i in built.kwargs["image"] + built.kwargs["mask_image"]] == [(64, 64)] * 4
    edit = EngineCall(key(Mode.EDIT), [item(1, 1, input_image=image)])
    built = build_call(tiny.family, tiny.pipeline(Mode.EDIT), edit)
    # SD image-to-image takes its size from the input: no width/height arguments.
    assert "width" not in built.kwargs and built.kwargs["image"][0].size == (64, 64)


def test_images_come_back_per_item_and_each_image_is_its_seed(tiny: LoadedModel) -> None:
    output, steps = run(tiny, EngineCall(key(), [item(10, 2), item(500, 1, "other")]))
    assert [len(images) for images in output.images] == [2, 1]
    assert all(image.size == (64, 64) for images in output.images for image in images)
    assert (output.steps_run, output.interrupted) == (2, False)
    assert [(step, total) for step, total, _ in steps] == [(1, 2), (2, 2)]
    alone, _ = run(tiny, EngineCall(key(), [item(11, 1)]))
    # The second image of seed 10 is the image of seed 11: batched equals alone.
    assert np.abs(pixels(output.images[0][1]) - pixels(alone.images[0][0])).max() <= 2
    assert np.abs(pixels(output.images[0][0]) - pixels(alone.images[0][0])).max() > 2


def test_previews_go_to_the_items_that_asked_at_their_steps(tiny: LoadedModel) -> None:
    items = [item(1, 2, wants_preview_every=1), item(2, 1), item(3, 1, wants_preview_every=2)]
    _, steps = run(tiny, EngineCall(key(steps=4), items))
    assert [wanted for _, _, wanted in steps] == [
        [True, False, False], [True, False, True], [True, False, False], [True, False, True]
    ]  # fmt: skip


def test_a_cancel_interrupts_the_call_at_the_next_step(tiny: LoadedModel) -> None:
    output, steps = run(tiny, EngineCall(key(steps=6), [item(1, 2)]), cancel_at=2)
    assert output.interrupted
    assert output.steps_run == 2 == len(steps)
    assert [len(images) for images in output.images] == [2]


def test_compile_sizes_are_configured_or_every_batch_size() -> None:
    assert compile_sizes(False, [2], 4) == ()
    assert compile_sizes(True, [], 3) == (1, 2, 3)
    assert compile_sizes(True, [4, 1, 4], 8) == (1, 4)
