"""The keyword options of the SDK's calls, typed once for both clients (PEP 692): each is
a field of the server's request body, sent only when given."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from easel.client.images import ImageInput

Format = Literal["png", "jpeg", "webp"]


class GenerationFields(TypedDict, total=False):
    """The fields of a generation request (SPEC "Generation request"); `image` and `mask`
    are sent as `input_image` and `mask_image` (`mode` is inferred from them)."""

    image: ImageInput
    mask: ImageInput
    mode: Literal["text-to-image", "edit", "inpaint"]
    negative_prompt: str
    style: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int
    num_images: int
    output_format: Format
    quality: int
    model: str
    extra_params: dict[str, Any]
    preview_every: int
    output: Literal["base64", "url"]


class JobFields(GenerationFields, total=False):
    """A generation request plus the job's own options: `webhook` (`{url, events?}`),
    `timeout` (seconds the job may run) and an `idempotency_key` (sent as a header)."""

    webhook: dict[str, Any]
    timeout: float
    idempotency_key: str


class Encoding(TypedDict, total=False):
    """How an image-utils op encodes its result."""

    output_format: Format
    quality: int


class ResizeOptions(Encoding, total=False):
    """`scale`, or `width`/`height` with `fit` (stretch, contain, cover)."""

    width: int
    height: int
    scale: float
    fit: Literal["stretch", "contain", "cover"]
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"]


class ExtractOptions(Encoding, total=False):
    """`crop` to the mask's bounding box, plus `padding` pixels."""

    crop: bool
    padding: int


class CannyOptions(Encoding, total=False):
    low_threshold: float
    high_threshold: float
    aperture_size: Literal[3, 5, 7]
    l2_gradient: bool


class MaskOptions(Encoding, total=False):
    """Applied in this order: threshold, fill_holes, dilate, erode, feather, invert."""

    threshold: int
    fill_holes: bool
    dilate: int
    erode: int
    feather: float
    invert: bool


class SmartMaskOptions(TypedDict, total=False):
    """`multimask` (also the next-best candidates, at most `max_masks`) and `refine`
    (the mask refinements of `MaskOptions`, applied by the segmenter)."""

    multimask: bool
    max_masks: int
    refine: dict[str, Any]
