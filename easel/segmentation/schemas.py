"""Request and response bodies of the segmentation service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from easel.core.fields import IMAGE_DOC, ImageField
from easel.core.masks import MaskRefine
from easel.core.openapi import EXAMPLE_MASK, EXAMPLE_PNG

Point = tuple[float, float]


class SmartMaskRequest(BaseModel):
    """Rules across fields (422 naming the field): `image` or `image_id`, not both; at
    least one point or a `box`; `labels`, when given, one per point; points and box inside
    the image; at most EASEL_SEGMENTATION_MAX_POINTS points."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image": EXAMPLE_PNG, "points": [[4, 4]], "labels": [1]}]},
    )

    image: ImageField | None = Field(
        None, description=IMAGE_DOC + " Or `image_id` instead, from `/api/smart-mask/prepare`."
    )
    image_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="An image prepared by `POST /api/smart-mask/prepare`, instead of `image`: "
        "only the clicks travel. 404 once it has expired (prepare it again).",
    )
    points: list[Point] = Field(
        default_factory=list,
        description="Clicked points `[[x, y], ...]` in the image's pixels (after EXIF "
        "orientation). At least one, or a `box`.",
    )
    labels: list[Literal[0, 1]] | None = Field(
        None, description="One per point: 1 selects (the default), 0 excludes."
    )
    box: tuple[float, float, float, float] | None = Field(
        None, description="`[x1, y1, x2, y2]` around the object, in the image's pixels."
    )
    multimask: bool = Field(False, description="Also return the next-best candidates.")
    max_masks: int | None = Field(
        None, ge=1, description="With `multimask`: most candidates (server limit applies)."
    )
    refine: MaskRefine | None = Field(
        None, description="Post-process the mask: fill holes, dilate, erode, feather..."
    )

    @field_validator("box")
    @classmethod
    def _ordered(
        cls, box: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if box is not None and not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError("must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
        return box


class PrepareRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"image": EXAMPLE_PNG}]}
    )

    image: ImageField = Field(description=IMAGE_DOC)


class PreparedImage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "image_id": "5d41402abc4b2a76b9719d911017c592",
                    "width": 8,
                    "height": 8,
                    "expires_in": 600,
                    "cached": False,
                }
            ]
        }
    )

    image_id: str = Field(description="Send it as `image_id` with each click.")
    width: int
    height: int
    expires_in: float = Field(description="Seconds it stays after its last use.")
    cached: bool = Field(description="It was prepared already (the same image).")


class MaskCandidate(BaseModel):
    mask: str = Field(description="Base64 PNG, single channel, the image's size; 255 selects.")
    bbox: list[int] | None = Field(
        description="`[x1, y1, x2, y2]` of the selected pixels (x2, y2 exclusive); null when "
        "nothing is selected."
    )
    area: int = Field(description="Selected pixels (mask >= 128).")
    score: float = Field(
        description="0-1. FastSAM: the model's confidence; grabcut: how closely the outline "
        "follows image edges."
    )


class SmartMaskResult(MaskCandidate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mask": EXAMPLE_MASK,
                    "bbox": [2, 2, 6, 6],
                    "area": 16,
                    "score": 0.93,
                    "model": "grabcut",
                    "width": 8,
                    "height": 8,
                    "cached": False,
                    "masks": None,
                }
            ]
        }
    )

    model: str = Field(description="The segmenter that made it: fastsam or grabcut.")
    width: int
    height: int
    cached: bool = Field(description="The image's per-image work came from the cache.")
    masks: list[MaskCandidate] | None = Field(
        None, description="With `multimask`: every candidate, best first (the first is the mask)."
    )
