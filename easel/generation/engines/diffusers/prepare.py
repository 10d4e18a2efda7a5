"""A request resolved against its model, before it is queued: which model and mode, the
family's `extra_params` checked, defaults applied and sizes rounded to the model's multiple.
Refusals are InvalidInput naming the field; what is only odd becomes a warning."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from easel.core.errors import InvalidInput, validation_details
from easel.core.generation_api import GenerationRequest
from easel.generation.engines.base import CallKey, Prepared
from easel.generation.engines.diffusers.families import FAMILIES, Family
from easel.generation.engines.diffusers.models import BUILTIN_SOURCE
from easel.generation.settings import ModelSpec


def prepare(
    request: GenerationRequest,
    models: dict[str, ModelSpec],
    default_model: str,
    input_size: tuple[int, int] | None = None,
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
    extra = _extra_params(request, family)
    warnings: list[str] = []
    if spec.source.startswith(BUILTIN_SOURCE):
        warnings.append(f"{name} has random weights: its images are noise")
    if request.negative_prompt and not family.negative_prompt:
        warnings.append(f"{spec.family} models ignore negative_prompt")
    width, height = _size(request, spec, family, input_size, warnings)
    key = CallKey(
        model=name,
        mode=mode,
        width=width,
        height=height,
        steps=request.steps or spec.default_steps or family.default_steps,
        guidance_scale=(
            request.guidance_scale
            if request.guidance_scale is not None
            else spec.default_guidance
            if spec.default_guidance is not None
            else family.default_guidance
        ),
        extra=tuple(sorted(extra.items())),
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
