"""Mask refinement shared by image-utils' `mask` op and segmentation's `refine` option."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

MAX_RADIUS = 512


class MaskRefine(BaseModel):
    """Applied in this order: threshold, fill_holes, dilate, erode, feather, invert."""

    model_config = ConfigDict(extra="forbid")

    threshold: int | None = Field(
        None, ge=0, le=255, description="Binarise first: pixels >= threshold become 255."
    )
    fill_holes: bool = Field(False, description="Fill enclosed holes of the selection.")
    dilate: int = Field(0, ge=0, le=MAX_RADIUS, description="Grow by this radius in pixels.")
    erode: int = Field(0, ge=0, le=MAX_RADIUS, description="Shrink by this radius in pixels.")
    feather: float = Field(
        0.0, ge=0, le=MAX_RADIUS, description="Soften edges: Gaussian blur sigma in pixels."
    )
    invert: bool = Field(False, description="Swap selected and unselected.")

    @property
    def is_identity(self) -> bool:
        return self == MaskRefine()


def disk(radius: int) -> NDArray[np.uint8]:
    """The structuring element for a radius: every offset within `radius` (Euclidean)."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    inside: NDArray[np.uint8] = (x * x + y * y <= radius * radius).astype(np.uint8)
    return inside


def fill_holes(mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Set every background pixel not connected to the border to 255."""
    padded = np.pad((mask > 0).astype(np.uint8) * 255, 1)
    flood = padded.copy()
    fill_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, fill_mask, (0, 0), 255)
    holes = flood[1:-1, 1:-1] == 0
    out = mask.copy()
    out[holes] = 255
    return out


def refine_mask(mask: NDArray[np.uint8], refine: MaskRefine) -> NDArray[np.uint8]:
    out: NDArray[Any] = mask
    if refine.threshold is not None:
        out = np.where(out >= refine.threshold, 255, 0).astype(np.uint8)
    if refine.fill_holes:
        out = fill_holes(out)
    if refine.dilate:
        out = cv2.dilate(out, disk(refine.dilate), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if refine.erode:
        out = cv2.erode(out, disk(refine.erode), borderType=cv2.BORDER_CONSTANT, borderValue=255)
    if refine.feather:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=refine.feather, borderType=cv2.BORDER_REPLICATE)
    if refine.invert:
        out = 255 - out
    return np.ascontiguousarray(out, dtype=np.uint8)
