"""compat: the first version's GPU service call, `POST /generate {workflow, params}` ->
`{status: done|failed, image, error}`, run for real through the GenerationService.

`workflow` names a ComfyUI workflow (with the diffusers engine: a mode). `params` holds
the workflow's parameters by name: the standard request fields (prompt, seed, width,
input_image, ...) and the workflow's own. Invalid input is refused with 422 naming
`params.<name>`; a run that fails answers `status: failed` with the message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from easel.core.errors import EaselError, InvalidInput, validation_details
from easel.core.generation_api import GenerationRequest
from easel.generation.service import GenerationService

# params that are fields of a GenerationRequest; every other one is a workflow parameter
REQUEST_FIELDS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "style",
        "width",
        "height",
        "steps",
        "guidance_scale",
        "seed",
        "input_image",
        "mask_image",
        "output_format",
        "quality",
    }
)
ALIASES = {"target_image": "input_image"}  # the first version's name for the input image


class GpuServiceGenerate(BaseModel):
    """The first version's GPU service call, `POST /generate` (not the first version's pod
    API call of the same path, which the job manager answers)."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(description="A workflow name (diffusers engine: a mode).")
    params: dict[str, Any] = Field(default_factory=dict)


class GpuServiceGenerated(BaseModel):
    """The first version's GPU service answer: the first image, or the failure."""

    status: Literal["done", "failed"]
    image: str | None = Field(None, description="Base64 of the first image, when done.")
    error: str | None = None


def _legacy_field(name: str) -> str:
    if name in ("model", "mode"):
        return "workflow"
    return "params." + name.removeprefix("extra_params.")


def _renamed(exc: InvalidInput) -> InvalidInput:
    details = [
        {**d, "field": _legacy_field(str(d.get("field", "")))}
        for d in exc.details or []
        if isinstance(d, dict)
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or exc.message
    return InvalidInput(message, details=details or exc.details)


def to_request(body: GpuServiceGenerate, *, workflows: bool) -> GenerationRequest:
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.params.items():
        name = ALIASES.get(name, name)
        (fields if name in REQUEST_FIELDS else extra)[name] = value
    fields["model" if workflows else "mode"] = body.workflow
    try:
        return GenerationRequest.model_validate({**fields, "extra_params": extra})
    except ValidationError as exc:
        details = validation_details(exc.errors())
        raise _renamed(InvalidInput("invalid params", details=details)) from None


async def run_legacy(
    service: GenerationService, body: GpuServiceGenerate, *, workflows: bool
) -> GpuServiceGenerated:
    request = to_request(body, workflows=workflows)
    try:
        submission = await service.submit(request, request_id=None, listening=False)
    except InvalidInput as exc:
        raise _renamed(exc) from exc
    try:
        result = await service.result(submission)
    except EaselError as exc:
        return GpuServiceGenerated(status="failed", error=exc.message)
    image = result.images[0].image if result.images else None
    return GpuServiceGenerated(status="done", image=image)
