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

    @model_validator(mode="after")
    def _mode_fits_inputs(self) -> GenerationRequest:
        # Rules of the request alone, so every entry point applies them; those that
        # depend on the engine (a prompt per mode, models, styles) are the service's.
        if self.mask_image is not None and self.input_image is None:
            raise _field_error(type(self).__name__, "input_image", "required with mask_image")
        if self.mode is None:
            if self.mask_image is not None:
                self.mode = Mode.INPAINT
            elif self.input_image is not None:
                self.mode = Mode.EDIT
            else:
                self.mode = Mode.TEXT_TO_IMAGE
        return self

    @property
    def resolved_mode(self) -> Mode:
        assert self.mode is not None
        return self.mode


class GeneratedImage(BaseModel):
    image: str = Field(description="Base64 of the encoded image.")
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
    batch_size: int = Field(
        description="Images the pipeline call generated (its batch dimension), this"
        " request's and those of the requests that shared the call."
    )
    batch_requests: int = Field(description="Requests that shared the pipeline call.")
    timings: Timings
    warnings: list[str] = Field(default_factory=list)
