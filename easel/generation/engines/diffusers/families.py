"""What differs between diffusers model families: pipelines per mode, defaults, size
multiples, engine-specific `extra_params`, and how a batched call becomes keyword args.

Pure configuration and argument building: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from easel.core.generation_api import Mode


class SDExtra(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strength: float | None = Field(
        None, gt=0, le=1, description="edit/inpaint: how far from the input (0.75 / 1.0)."
    )
    clip_skip: int | None = Field(None, ge=1, le=4)
    guidance_rescale: float | None = Field(None, ge=0, le=1)


class FluxExtra(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strength: float | None = Field(None, gt=0, le=1)
    max_sequence_length: int | None = Field(None, ge=16, le=512)


class QwenExtra(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strength: float | None = Field(None, gt=0, le=1, description="qwen-image edit/inpaint.")
    max_sequence_length: int | None = Field(None, ge=16, le=1024)


@dataclass(frozen=True)
class Family:
    name: str
    pipelines: dict[Mode, str]  # mode -> diffusers pipeline class name
    extra: type[BaseModel]
    default_size: int
    default_steps: int
    default_guidance: float
    size_multiple: int  # VAE factor, times 2 where latents are packed 2x2
    negative_prompt: bool = True
    guidance_arg: str = "guidance_scale"  # Qwen's classifier-free guidance is true_cfg_scale
    default_strength: dict[Mode, float] | None = None
    # How the image-to-image pipelines cut the schedule by strength (their `get_timesteps`):
    # SD and SDXL run int(steps x strength) steps, FLUX and Qwen-Image
    # steps - int(steps x (1 - strength)).
    strength_rounding: Literal["floor", "keep"] = "floor"
    # The edit pipeline reads several condition images for one prompt (`input_images`).
    multi_image: bool = False
    # One prompt per pipeline call (Qwen-Image-Edit-Plus refuses a batch of prompts): its
    # requests never share a call, and a request's images come from num_images_per_prompt.
    batches: bool = True


_SD_MODES = {
    Mode.TEXT_TO_IMAGE: "AutoPipelineForText2Image",
    Mode.EDIT: "AutoPipelineForImage2Image",
    Mode.INPAINT: "AutoPipelineForInpainting",
}
_SD_STRENGTH = {Mode.EDIT: 0.75, Mode.INPAINT: 1.0}

FAMILIES: dict[str, Family] = {
    "sd": Family("sd", _SD_MODES, SDExtra, 512, 30, 7.5, 8, default_strength=_SD_STRENGTH),
    "sdxl": Family("sdxl", _SD_MODES, SDExtra, 1024, 30, 5.0, 8, default_strength=_SD_STRENGTH),
    "flux": Family(
        "flux", _SD_MODES, FluxExtra, 1024, 28, 3.5, 16, negative_prompt=False,
        default_strength=_SD_STRENGTH, strength_rounding="keep",
    ),
    "qwen-image": Family(
        "qwen-image",
        {
            Mode.TEXT_TO_IMAGE: "QwenImagePipeline",
            Mode.EDIT: "QwenImageImg2ImgPipeline",
            Mode.INPAINT: "QwenImageInpaintPipeline",
        },
        QwenExtra, 1024, 50, 4.0, 16, guidance_arg="true_cfg_scale",
        default_strength=_SD_STRENGTH, strength_rounding="keep",
    ),
    "qwen-image-edit": Family(
        "qwen-image-edit",
        {Mode.EDIT: "QwenImageEditPipeline", Mode.INPAINT: "QwenImageEditInpaintPipeline"},
        QwenExtra, 1024, 50, 4.0, 16, guidance_arg="true_cfg_scale",
        default_strength={Mode.INPAINT: 1.0}, strength_rounding="keep",
    ),
    "qwen-image-edit-plus": Family(
        "qwen-image-edit-plus",
        {Mode.EDIT: "QwenImageEditPlusPipeline"},
        QwenExtra, 1024, 40, 4.0, 16, guidance_arg="true_cfg_scale",
        multi_image=True, batches=False,
    ),
}  # fmt: skip


def strength_of(family: Family, mode: Mode, given: float | None) -> float | None:
    """The strength a call of `mode` runs at; None where the pipeline takes none."""
    if not family.default_strength or mode not in family.default_strength:
        return None
    return given if given is not None else family.default_strength[mode]


def denoising_steps(family: Family, mode: Mode, steps: int, given: float | None) -> int:
    """The denoising steps a call runs, reckoned as the family's pipeline does."""
    strength = strength_of(family, mode, given)
    if strength is None:
        return steps
    if family.strength_rounding == "floor":
        return min(int(steps * strength), steps)
    return steps - int(max(steps - min(steps * strength, steps), 0))


def call_kwargs(
    family: Family,
    mode: Mode,
    *,
    prompts: list[str],
    negatives: list[str | None],
    images: list[Any] | None,
    masks: list[Any] | None,
    width: int,
    height: int,
    steps: int,
    guidance: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Keyword arguments of one batched pipeline call (one entry per output image)."""
    kwargs: dict[str, Any] = {
        "prompt": prompts,
        "num_inference_steps": steps,
        family.guidance_arg: guidance,
        "width": width,
        "height": height,
        "output_type": "pil",
    }
    if family.negative_prompt and any(negatives):
        kwargs["negative_prompt"] = [n or "" for n in negatives]
    elif family.guidance_arg == "true_cfg_scale":
        # Qwen runs true CFG only when given a negative prompt; " " is its documented default.
        kwargs["negative_prompt"] = [n or " " for n in negatives]
    if images is not None:
        kwargs["image"] = images
    if masks is not None:
        kwargs["mask_image"] = masks
    strength = strength_of(family, mode, extra.pop("strength", None))
    if strength is not None:
        kwargs["strength"] = strength
    kwargs.update({k: v for k, v in extra.items() if v is not None})
    if not family.batches:
        # One request's prompt once, its images from num_images_per_prompt (the per-image
        # generators still give image i the seed seed + i).
        kwargs["num_images_per_prompt"] = len(prompts)
        kwargs["prompt"] = prompts[0]
        if "negative_prompt" in kwargs:
            kwargs["negative_prompt"] = kwargs["negative_prompt"][0]
    return kwargs
