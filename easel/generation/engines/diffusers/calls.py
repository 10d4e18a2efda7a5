"""An EngineCall as the arguments of one batched pipeline call.

The batch is flat: every image of every item, in item order. Each image has its own CPU
generator seeded `seed + i` (image i of its request), so a request gives the same images
whether it runs alone or batched with others, on the same device. Input images and masks
are fitted to the call's size: one call has one size.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from easel.generation.engines.base import EngineCall, EngineItem
from easel.generation.engines.diffusers.control import UNION_MODES
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
            if family.multi_image:
                pass  # the item's condition images, once for the call: below
            elif item.input_image is not None:
                images.append(fit(item.input_image, key.width, key.height))
            if item.mask_image is not None:
                masks.append(fit(item.mask_image, key.width, key.height))
    if family.multi_image:
        # Each keeps its own size: the pipeline sizes every condition image by its area.
        images = [image for item in call.items for image in item.input_images]
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
    if key.control:
        kwargs.update(control_kwargs(family, accepted, call))
    return PipelineCall(kwargs=kwargs, generators=generators)


def control_kwargs(family: Family, accepted: Mapping[str, Any], call: EngineCall) -> dict[str, Any]:
    """The ControlNet arguments: per control, its image for every image of the flat batch
    (each item's own, repeated for its images), scale and share of the steps. One control
    takes single values, several take lists (the pipeline's MultiControlNet then)."""
    key = call.key
    batches = [
        [
            fit(item.control_images[index], key.width, key.height)
            for item in call.items
            for _ in range(item.num_images)
        ]
        for index in range(len(key.control))
    ]
    conditions = [_condition(family, batch) for batch in batches]
    scales = [control.strength for control in key.control]
    single = len(key.control) == 1
    # Text-to-image SD pipelines take the control image as `image`; the others (with an
    # `image` of their own to edit) as `control_image`.
    kwargs: dict[str, Any] = {
        "control_image" if "control_image" in accepted else "image": (
            conditions[0] if single else conditions
        ),
        "controlnet_conditioning_scale": scales[0] if single else scales,
        "control_guidance_start": [control.start for control in key.control],
        "control_guidance_end": [control.end for control in key.control],
    }
    if "control_mode" in accepted:  # an SDXL ControlNet-Union: which type each image is
        kwargs["control_mode"] = [UNION_MODES[control.type] for control in key.control]
    return kwargs


def _condition(family: Family, batch: list[Image.Image]) -> Any:
    """One control's images as its pipeline takes a batch of them. The SD pipelines refuse
    nested lists of images with several ControlNets, but take a tensor batch: RGB in
    [0, 1], NCHW, as they make from images. Qwen-Image's takes images (it normalises them
    itself; a tensor would skip that)."""
    if family.name.startswith("qwen"):
        return [image.convert("RGB") for image in batch]
    import numpy as np
    import torch

    pixels = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in batch])
    return torch.from_numpy(pixels / 255).permute(0, 3, 1, 2)


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height))
