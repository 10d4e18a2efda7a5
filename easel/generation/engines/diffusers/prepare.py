"""A request resolved against its model, before it is queued: which model and mode, the
family's `extra_params` checked, defaults applied and sizes rounded to the model's multiple.
Refusals are InvalidInput naming the field; what is only odd becomes a warning."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from easel.core.errors import InvalidInput, validation_details
from easel.core.generation_api import GenerationRequest
from easel.generation.engines.base import CallKey, Prepared
from easel.generation.engines.diffusers.adapters import AdapterCatalogue
from easel.generation.engines.diffusers.control import ControlNets
from easel.generation.engines.diffusers.families import (
    FAMILIES,
    Family,
    denoising_steps,
    strength_of,
)
from easel.generation.engines.diffusers.models import BUILTIN_SOURCE
from easel.generation.engines.diffusers.schedulers import check_scheduler
from easel.generation.settings import ModelSpec


def prepare(
    request: GenerationRequest,
    models: dict[str, ModelSpec],
    default_model: str,
    input_size: tuple[int, int] | None = None,
    controlnets: ControlNets | None = None,
    adapters: AdapterCatalogue | None = None,
) -> Prepared:
    name = request.model or default_model
    spec = models.get(name)
    if spec is None:
        raise InvalidInput.field(
            "model", f"unknown model {name!r}; known: {', '.join(sorted(models))}"
        )
    family = FAMILIES[spec.family]
    mode = request.resolved_mode
    if mode not in family.pipelines:
        supported = ", ".join(family.pipelines)
        raise InvalidInput.field("mode", f"model {name!r} supports only: {supported}")
    if request.input_images and not family.multi_image:
        raise InvalidInput.field(
            "input_images", f"model {name!r} takes one input_image; several need an Edit-Plus model"
        )
    extra = _extra_params(request, family)
    warnings: list[str] = []
    if spec.source.startswith(BUILTIN_SOURCE):
        warnings.append(f"{name} has random weights: its images are noise")
    if request.negative_prompt and not family.negative_prompt:
        warnings.append(f"{spec.family} models ignore negative_prompt")
    width, height = _size(request, spec, family, input_size, warnings)
    steps = request.steps or spec.default_steps or family.default_steps
    _check_denoising(family, request, steps, extra.get("strength"))
    key = CallKey(
        model=name,
        mode=mode,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=(
            request.guidance_scale
            if request.guidance_scale is not None
            else spec.default_guidance
            if spec.default_guidance is not None
            else family.default_guidance
        ),
        extra=tuple(sorted(extra.items())),
        shares=family.batches,
        control=(controlnets or ControlNets()).resolve(request.control, spec.family, mode, name),
        loras=(adapters or AdapterCatalogue()).resolve(request.loras, spec.family, name),
        scheduler=check_scheduler(request.scheduler, spec.family, name),
    )
    return Prepared(key=key, warnings=tuple(warnings))


def _extra_params(request: GenerationRequest, family: Family) -> dict[str, Any]:
    """The family's own parameters; a refusal names `extra_params.<name>`."""
    try:
        return family.extra.model_validate(request.extra_params).model_dump(exclude_none=True)
    except ValidationError as exc:
        details = [
            {**d, "field": f"extra_params.{d['field']}"} for d in validation_details(exc.errors())
        ]
        raise InvalidInput(
            "; ".join(f"{d['field']}: {d['message']}" for d in details), details=details
        ) from exc


def _check_denoising(
    family: Family, request: GenerationRequest, steps: int, given: float | None
) -> None:
    """Refuse a call that would run no denoising step (steps x strength rounding down to 0:
    the pipeline would fail on an empty schedule), naming the smallest values that work."""
    mode = request.resolved_mode
    strength = strength_of(family, mode, given)
    if strength is None or denoising_steps(family, mode, steps, strength) >= 1:
        return
    fewest = max(steps + 1, math.ceil(1 / strength))
    while denoising_steps(family, mode, fewest, strength) < 1:  # float rounding
        fewest += 1
    weakest = min(1.0, math.ceil(1000 / steps) / 1000)
    while weakest < 1.0 and denoising_steps(family, mode, steps, weakest) < 1:
        weakest = min(1.0, weakest + 0.001)
    problem = f"{steps} step(s) at strength {strength:g} run no denoising step"
    details = [
        {"field": "steps", "message": f"{problem}; at least {fewest}", "minimum": fewest},
        {
            "field": "extra_params.strength",
            "message": f"{problem}; at least {weakest:g}",
            "minimum": weakest,
        },
    ]
    raise InvalidInput(
        f"steps: {problem}; use steps >= {fewest} or extra_params.strength >= {weakest:g}",
        details=details,
    )


def _size(
    request: GenerationRequest,
    spec: ModelSpec,
    family: Family,
    input_size: tuple[int, int] | None,
    warnings: list[str],
) -> tuple[int, int]:
    # Without a size, an edit keeps its input image's size; else the model's default.
    default = spec.default_size or family.default_size
    width = request.width or (input_size[0] if input_size else default)
    height = request.height or (input_size[1] if input_size else default)
    multiple = family.size_multiple
    rounded = (
        max(multiple, width // multiple * multiple),
        max(multiple, height // multiple * multiple),
    )
    if rounded != (width, height):
        warnings.append(
            f"size {width}x{height} rounded to {rounded[0]}x{rounded[1]} (multiples of {multiple})"
        )
    return rounded
