"""Request and response bodies of the image-utils service."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from easel.core.fields import IMAGE_DOC, ImageField
from easel.core.images import OutputFormat
from easel.core.masks import MaskRefine

MAX_SIDE = 16384


def _aperture(value: int) -> int:
    if value not in (3, 5, 7):
        raise ValueError("must be 3, 5 or 7")
    return value


class ImageOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_format: OutputFormat = Field(OutputFormat.PNG, description="png, jpeg or webp.")
    quality: int | None = Field(
        None, ge=1, le=100, description="jpeg/webp quality; the server default when absent."
    )


class ResizeRequest(ImageOutput):
    image: ImageField = Field(description=IMAGE_DOC)
    width: int | None = Field(None, ge=1, le=MAX_SIDE)
    height: int | None = Field(None, ge=1, le=MAX_SIDE)
    scale: float | None = Field(None, gt=0, le=16, description="Instead of width/height.")
    fit: Literal["stretch", "contain", "cover"] = Field(
        "contain",
        description="stretch: exactly width x height; contain: fit inside, keep aspect; "
        "cover: fill width x height, keep aspect, centre-crop the overflow.",
    )
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "lanczos"

    @model_validator(mode="after")
    def _one_way_to_size(self) -> ResizeRequest:
        if self.scale is not None and (self.width or self.height):
            raise ValueError("give either scale or width/height, not both")
        if self.scale is None and not (self.width or self.height):
            raise ValueError("give width, height or scale")
        if self.fit != "contain" and not (self.width and self.height):
            raise ValueError(f"fit={self.fit} needs both width and height")
        return self


class CropRequest(ImageOutput):
    image: ImageField = Field(description=IMAGE_DOC)
    x: int = Field(ge=0, description="Left edge in pixels.")
    y: int = Field(ge=0, description="Top edge in pixels.")
    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)


class ConvertRequest(ImageOutput):
    image: ImageField = Field(description=IMAGE_DOC)
    output_format: OutputFormat = Field(
        validation_alias=AliasChoices("output_format", "format"),
        description="png, jpeg or webp (also accepted as `format`).",
    )


class ExtractObjectRequest(ImageOutput):
    image: ImageField = Field(description=IMAGE_DOC)
    mask: ImageField = Field(description="White selects. Same size as the image.")
    crop: bool = Field(False, description="Crop the result to the mask's bounding box.")
    padding: int = Field(0, ge=0, le=MAX_SIDE, description="Pixels kept around the crop.")

    @field_validator("output_format")
    @classmethod
    def _keeps_alpha(cls, value: OutputFormat) -> OutputFormat:
        if value is OutputFormat.JPEG:
            raise ValueError("jpeg has no alpha channel; use png or webp")
        return value


class DiffRequest(ImageOutput):
    image_a: ImageField = Field(description=IMAGE_DOC)
    image_b: ImageField = Field(description="Same size as image_a.")


class CannyRequest(ImageOutput):
    image: ImageField = Field(description=IMAGE_DOC)
    low_threshold: float = Field(100.0, ge=0, le=1000)
    high_threshold: float = Field(200.0, ge=0, le=1000)
    # An int checked by value, not Literal[3, 5, 7]: form fields arrive as text.
    aperture_size: Annotated[int, AfterValidator(_aperture)] = Field(3, description="3, 5 or 7.")
    l2_gradient: bool = False


class MaskRequest(ImageOutput, MaskRefine):
    mask: ImageField = Field(description="A mask: white selects. " + IMAGE_DOC)


class ImageResult(BaseModel):
    image: str = Field(description="Base64 of the encoded image.")
    format: OutputFormat
    media_type: str
    width: int
    height: int


class DiffResult(BaseModel):
    mae: float = Field(description="Mean absolute error over pixels and RGB channels, 0-255.")
    mae_normalized: float = Field(description="mae / 255, 0-1.")
    max_error: int = Field(description="Largest channel difference, 0-255.")
    changed_fraction: float = Field(description="Share of pixels where any channel differs.")
    heatmap: ImageResult = Field(
        description="Per-pixel mean absolute difference, colour mapped (JET, 0 = blue)."
    )


BODY_MODELS: tuple[type[BaseModel], ...] = (
    ResizeRequest,
    CropRequest,
    ConvertRequest,
    ExtractObjectRequest,
    DiffRequest,
    CannyRequest,
    MaskRequest,
)
