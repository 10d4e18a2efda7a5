"""The generation request and result: the public contract (SPEC: "Generation request")
shared by the generation service, the job manager and the gateway's first-version API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from easel.core.fields import ImageField
from easel.core.images import OutputFormat

MAX_PROMPT = 4000
MAX_SEED = 2**32 - 1


def _scalar(value: Any) -> Any:
    # Every engine's parameters are numbers, strings or booleans (diffusers families,
    # ComfyUI workflow declarations): a nested value is wrong whatever the engine.
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("must be a number, a string, a boolean or null (not nested)")


ExtraValue = Annotated[
    Any,
    PlainValidator(_scalar),
    WithJsonSchema({"type": ["number", "string", "boolean", "null"]}),
]


def _field_error(model: str, field: str, message: str) -> ValidationError:
    """A validation error naming `field`, from a rule that spans several fields."""
    error = PydanticCustomError("invalid_combination", message)
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=error, loc=(field,), input=None)]
    )


class OutputKind(StrEnum):
    """How a result carries its images: inline base64, or a link to the stored image."""

    BASE64 = "base64"
    URL = "url"


class LoraChoice(BaseModel):
    """One LoRA adapter applied to a request's model, at a weight."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=200,
        description="An adapter of `GET /api/models` (a file under MODELS_PATH/loras, or a "
        "hub id the model's configuration names).",
    )
    weight: float = Field(1.0, ge=-4, le=4, description="0 is the model without it.")


class ControlChoice(BaseModel):
    """One ControlNet condition: an image of `type` (edges, depth, ...) steering the
    layout, over the share `start`-`end` of the denoising steps."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        min_length=1, max_length=64, description="A control type the model's family lists."
    )
    image: ImageField = Field(description="The condition image; or, with preprocess, a photo.")
    strength: float = Field(1.0, ge=0, le=2, description="The ControlNet's conditioning scale.")
    start: float = Field(0.0, ge=0, le=1, description="Share of the steps where it begins.")
    end: float = Field(1.0, ge=0, le=1, description="Share of the steps where it ends.")
    preprocess: bool = Field(
        False, description="Turn `image` into the condition first (canny: its edge map)."
    )

    @model_validator(mode="after")
    def _start_before_end(self) -> ControlChoice:
        if self.start >= self.end:
            raise _field_error(type(self).__name__, "end", "must be greater than start")
        return self


class Mode(StrEnum):
    TEXT_TO_IMAGE = "text-to-image"
    EDIT = "edit"
    INPAINT = "inpaint"


class GenerationRequest(BaseModel):
    """A generation or edit. Rules across fields, each refused with a 422 naming the field:
    `prompt` is required for every mode but `edit`; `edit` and `inpaint` need `input_image`,
    `inpaint` also `mask_image` of the same size; `text-to-image` takes no `input_image` and
    only `inpaint` a `mask_image`. The server bounds `steps`, `num_images`, `width` and
    `height` (EASEL_MAX_STEPS, EASEL_MAX_NUM_IMAGES, EASEL_MAX_SIDE). `style` is one of
    `GET /api/generate/styles`, `model` a configured model; `extra_params` keys depend on
    the model (an edit's `strength`, 0-1, times `steps` must leave at least one step)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompt": "a lighthouse on a cliff at dusk, oil painting",
                    "negative_prompt": "blurry",
                    "width": 512,
                    "height": 512,
                    "steps": 20,
                    "seed": 42,
                }
            ]
        },
    )

    prompt: str | None = Field(
        None, max_length=MAX_PROMPT, description="Required for every mode but pure edits."
    )
    mode: Mode | None = Field(
        None, description="Inferred when absent: inpaint with a mask, edit with an image."
    )
    input_image: ImageField | None = None
    mask_image: ImageField | None = Field(None, description="White = repaint. Image's size.")
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)
    style: str | None = Field(None, description="A named preset from the styles file.")
    width: int | None = Field(None, ge=64, description="Rounded down to what the model takes.")
    height: int | None = Field(None, ge=64)
    steps: int | None = Field(None, ge=1)
    guidance_scale: float | None = Field(None, ge=0, le=50)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Random when absent.")
    num_images: int = Field(1, ge=1)
    output_format: OutputFormat = OutputFormat.PNG
    quality: int | None = Field(None, ge=1, le=100)
    model: str | None = Field(None, description="A configured model name; the default if absent.")
    extra_params: dict[str, ExtraValue] = Field(
        default_factory=dict, description="Engine-specific; validated per model family."
    )
    preview_every: int | None = Field(
        None, ge=1, description="Stream only: a low-resolution preview every k steps."
    )
    input_images: list[ImageField] = Field(
        default_factory=list,
        description="Edit models that take several images (Qwen-Image-Edit-Plus): all of "
        "them, in order; the first is the one `input_image` would be.",
    )
    loras: list[LoraChoice] = Field(
        default_factory=list, description="LoRA adapters to apply, each at its weight."
    )
    control: list[ControlChoice] = Field(
        default_factory=list, description="ControlNet conditions; several combine."
    )
    scheduler: str | None = Field(
        None, description="A scheduler the model's family lists; the model's own if absent."
    )
    output: OutputKind = Field(
        OutputKind.BASE64,
        description="`url`: each image is stored once and the result carries its link "
        "(`GET /api/images/{sha256}.{ext}`) instead of its bytes.",
    )

    @model_validator(mode="after")
    def _mode_fits_inputs(self) -> GenerationRequest:
        # Rules of the request alone, so every entry point applies them; those that
        # depend on the engine (a prompt per mode, models, styles) are the service's.
        if self.mask_image is not None and self.input_image is None:
            raise _field_error(type(self).__name__, "input_image", "required with mask_image")
        if self.input_images and self.input_image is not None:
            raise _field_error(
                type(self).__name__, "input_images", "give input_image or input_images, not both"
            )
        if self.mode is None:
            if self.mask_image is not None:
                self.mode = Mode.INPAINT
            elif self.input_image is not None or self.input_images:
                self.mode = Mode.EDIT
            else:
                self.mode = Mode.TEXT_TO_IMAGE
        return self

    @property
    def resolved_mode(self) -> Mode:
        assert self.mode is not None
        return self.mode


class GeneratedImage(BaseModel):
    image: str | None = Field(None, description="Base64 of the encoded image (output base64).")
    url: str | None = Field(None, description="Where to fetch it (output url).")
    sha256: str | None = Field(None, description="The encoded image's digest (output url).")
    seed: int
    format: OutputFormat
    media_type: str
    width: int
    height: int


class Timings(BaseModel):
    queue_wait_ms: float
    inference_ms: float
    encode_ms: float
    total_ms: float


class GenerationResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "images": [
                        {
                            "image": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAI...",
                            "seed": 42,
                            "format": "png",
                            "media_type": "image/png",
                            "width": 512,
                            "height": 512,
                        }
                    ],
                    "seed": 42,
                    "model": "sd-turbo",
                    "mode": "text-to-image",
                    "width": 512,
                    "height": 512,
                    "steps": 20,
                    "guidance_scale": 7.5,
                    "batch_size": 1,
                    "batch_requests": 1,
                    "timings": {
                        "queue_wait_ms": 3.1,
                        "inference_ms": 912.4,
                        "encode_ms": 11.8,
                        "total_ms": 927.3,
                    },
                    "warnings": [],
                }
            ]
        }
    )

    images: list[GeneratedImage]
    seed: int = Field(description="The seed of the first image; image i used seed + i.")
    model: str
    mode: Mode
    width: int
    height: int
    steps: int
    guidance_scale: float
    scheduler: str | None = Field(None, description="The scheduler that ran.")
    loras: list[LoraChoice] = Field(default_factory=list, description="The adapters applied.")
    batch_size: int = Field(
        description="Images the pipeline call generated (its batch dimension), this"
        " request's and those of the requests that shared the call."
    )
    batch_requests: int = Field(description="Requests that shared the pipeline call.")
    timings: Timings
    warnings: list[str] = Field(default_factory=list)
