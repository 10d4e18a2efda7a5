"""An EngineCall as the arguments of one batched pipeline call.

The batch is flat: every image of every item, in item order. Each image has its own CPU
generator seeded `seed + i` (image i of its request), so a request gives the same images
whether it runs alone or batched with others, on the same device. Input images and masks
are fitted to the call's size: one call has one size.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from PIL import Image

from easel.generation.engines.base import EngineCall, EngineItem
from easel.generation.engines.diffusers.families import Family, call_kwargs


@dataclass
class PipelineCall:
    kwargs: dict[str, Any]  # every argument but the generators and the step callback
    generators: list[Any]  # torch.Generator, one per image of the flat batch


def first_images(items: list[EngineItem]) -> list[int]:
    """Where each item's images start in the flat batch."""
    starts, total = [], 0
    for item in items:
        starts.append(total)
        total += item.num_images
    return starts


def build_call(family: Family, pipeline: Any, call: EngineCall) -> PipelineCall:
    import torch

    key = call.key
    prompts: list[str] = []
    negatives: list[str | None] = []
    images: list[Image.Image] = []
    masks: list[Image.Image] = []
    generators = []
    for item in call.items:
        for index in range(item.num_images):
            prompts.append(item.prompt)
            negatives.append(item.negative_prompt)
            generators.append(torch.Generator("cpu").manual_seed(item.seed + index))
            if item.input_image is not None:
                images.append(fit(item.input_image, key.width, key.height))
            if item.mask_image is not None:
                masks.append(fit(item.mask_image, key.width, key.height))
    kwargs = call_kwargs(
        family,
        key.mode,
        prompts=prompts,
        negatives=negatives,
        images=images or None,
        masks=masks or None,
        width=key.width,
        height=key.height,
        steps=key.steps,
        guidance=key.guidance_scale,
        extra=dict(key.extra),
    )
    accepted = inspect.signature(pipeline.__call__).parameters
    for optional in ("width", "height"):
        if optional not in accepted:
            kwargs.pop(optional)  # e.g. SD image-to-image takes the input's size
    return PipelineCall(kwargs=kwargs, generators=generators)


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height))
