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
from easel.core.openapi import EXAMPLE_MASK, EXAMPLE_PNG

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
    """Rules across fields (422): either `scale` or `width`/`height`, not both, and one of
    them; `fit` other than `contain` needs both `width` and `height`. The result's pixels
    are bounded (413 beyond the image limit)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PNG, "width": 16, "height": 16, "fit": "stretch"}]
        }
    )

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
    """The box must lie inside the image (422 naming the field that overflows)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PNG, "x": 2, "y": 2, "width": 4, "height": 4}]
        }
    )

    image: ImageField = Field(description=IMAGE_DOC)
    x: int = Field(ge=0, description="Left edge in pixels.")
    y: int = Field(ge=0, description="Top edge in pixels.")
    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)


class ConvertRequest(ImageOutput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PNG, "output_format": "webp", "quality": 80}]
        }
    )

    image: ImageField = Field(description=IMAGE_DOC)
    output_format: OutputFormat = Field(
        validation_alias=AliasChoices("output_format", "format"),
        description="png, jpeg or webp (also accepted as `format`).",
    )


class ExtractObjectRequest(ImageOutput):
    """`mask` is the image's size; `output_format` png or webp (jpeg has no alpha)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PNG, "mask": EXAMPLE_MASK, "crop": True, "padding": 1}]
        }
    )

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
    """The two images must have the same size (422)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"image_a": EXAMPLE_PNG, "image_b": EXAMPLE_PNG}]}
    )

    image_a: ImageField = Field(description=IMAGE_DOC)
    image_b: ImageField = Field(description="Same size as image_a.")


class CannyRequest(ImageOutput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PNG, "low_threshold": 50, "high_threshold": 150}]
        }
    )

    image: ImageField = Field(description=IMAGE_DOC)
    low_threshold: float = Field(100.0, ge=0, le=1000)
    high_threshold: float = Field(200.0, ge=0, le=1000)
    # An int checked by value, not Literal[3, 5, 7]: form fields arrive as text.
    aperture_size: Annotated[int, AfterValidator(_aperture)] = Field(3, description="3, 5 or 7.")
    l2_gradient: bool = False


class MaskRequest(ImageOutput, MaskRefine):
    """Applied in this order: threshold, fill_holes, dilate, erode, feather, invert."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"mask": EXAMPLE_MASK, "threshold": 128, "dilate": 1, "feather": 0.5}]
        }
    )

    mask: ImageField = Field(description="A mask: white selects. " + IMAGE_DOC)


class ImageResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "image": EXAMPLE_PNG,
                    "format": "png",
                    "media_type": "image/png",
                    "width": 8,
                    "height": 8,
                }
            ]
        }
    )

    image: str = Field(description="Base64 of the encoded image.")
    format: OutputFormat
    media_type: str
    width: int
    height: int


class DiffResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mae": 0.0,
                    "mae_normalized": 0.0,
                    "max_error": 0,
                    "changed_fraction": 0.0,
                    "heatmap": {
                        "image": EXAMPLE_PNG,
                        "format": "png",
                        "media_type": "image/png",
                        "width": 8,
                        "height": 8,
                    },
                }
            ]
        }
    )

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
