"""Mask refinement shared by image-utils' `mask` op and segmentation's `refine` option.

Every step costs in proportion to the mask's area, whatever the radius (a disk structuring
element would cost area x radius^2: seconds for a request of a few hundred bytes):

- dilate and erode of a binary mask threshold a Euclidean distance transform: a pixel is
  within the radius of the selection exactly when the disk element would reach it;
- a grey mask keeps the max/min filter of the disk (no linear-time form of it is known), so
  its radius has a small bound of its own (`MaskLimits.grey_max_radius`);
- a large feather is blurred at a reduced size, where its sigma is small, then enlarged.

Radii are also bounded by the mask's size (`MaskLimits.max_radius_ratio`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from easel.core.errors import InvalidInput

MAX_RADIUS = 512
# Up to this radius the disk element itself is cheaper than a distance transform (same result).
DIRECT_RADIUS = 4
# Feathers up to this sigma blur directly; larger ones blur at a size reduced by an integer
# factor that brings their sigma there to at most this (the cost of a direct blur grows with it).
DIRECT_SIGMA = 4.0


class MaskRefine(BaseModel):
    """Applied in this order: threshold, fill_holes, dilate, erode, feather, invert."""

    model_config = ConfigDict(extra="forbid")

    threshold: int | None = Field(
        None, ge=0, le=255, description="Binarise first: pixels >= threshold become 255."
    )
    fill_holes: bool = Field(False, description="Fill enclosed holes of the selection.")
    dilate: int = Field(
        0,
        ge=0,
        le=MAX_RADIUS,
        description="Grow by this radius in pixels (at most the mask's longer side).",
    )
    erode: int = Field(
        0,
        ge=0,
        le=MAX_RADIUS,
        description="Shrink by this radius in pixels (at most the mask's longer side).",
    )
    feather: float = Field(
        0.0,
        ge=0,
        le=MAX_RADIUS,
        description="Soften edges: Gaussian blur sigma in pixels (at most the mask's longer side).",
    )
    invert: bool = Field(False, description="Swap selected and unselected.")

    @property
    def is_identity(self) -> bool:
        return self == MaskRefine()


class MaskLimitSource(Protocol):
    mask_max_radius_ratio: float
    mask_grey_max_radius: int


@dataclass(frozen=True)
class MaskLimits:
    """How large a radius may be: `max_radius_ratio` x the mask's longer side for every
    radius, and `grey_max_radius` for dilate and erode of a grey mask (neither 0 nor 255
    somewhere), whose cost grows with the radius squared."""

    max_radius_ratio: float = 1.0
    grey_max_radius: int = 8

    @classmethod
    def from_settings(cls, settings: MaskLimitSource) -> MaskLimits:
        return cls(
            max_radius_ratio=settings.mask_max_radius_ratio,
            grey_max_radius=settings.mask_grey_max_radius,
        )


DEFAULT_LIMITS = MaskLimits()


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


def is_binary(mask: NDArray[np.uint8]) -> bool:
    """Only 0 and 255."""
    grey: NDArray[Any] = cv2.inRange(mask, 1, 254)
    return cv2.countNonZero(grey) == 0


def as_mask(selected: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """255 where selected, else 0."""
    out: NDArray[np.uint8] = selected.view(np.uint8) * np.uint8(255)
    return out


def check_radii(
    refine: MaskRefine, shape: tuple[int, ...], limits: MaskLimits, field_prefix: str = ""
) -> None:
    """Every radius within `max_radius_ratio` x the longer side: beyond it a dilate or erode
    only repeats the whole-mask answer, and a blur flattens the mask."""
    height, width = shape[:2]
    bound = int(limits.max_radius_ratio * max(height, width))
    for name in ("dilate", "erode", "feather"):
        if getattr(refine, name) > bound:
            raise InvalidInput.field(
                field_prefix + name,
                f"at most {bound} for a {width}x{height} mask "
                f"({limits.max_radius_ratio:g} x its longer side)",
            )


def check_grey_radii(refine: MaskRefine, limits: MaskLimits, field_prefix: str = "") -> None:
    for name in ("dilate", "erode"):
        if getattr(refine, name) > limits.grey_max_radius:
            raise InvalidInput.field(
                field_prefix + name,
                f"at most {limits.grey_max_radius} for a grey mask (values other than 0 and "
                "255); binarise it with `threshold` first",
            )


def dilate(mask: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    """The disk element's dilation; outside the image counts as unselected."""
    if radius <= DIRECT_RADIUS or not is_binary(mask):
        out: NDArray[Any] = cv2.dilate(
            mask, disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0
        )
        return out
    # Nothing beyond the selection's box grown by the radius can be reached: work inside it.
    out = np.zeros_like(mask)
    if (box := _selection_box(mask, radius)) is None:
        return out
    # Distance of each pixel to the nearest selected one (the zeros of `unselected`).
    unselected = (mask[box] == 0).view(np.uint8)
    distance = cv2.distanceTransform(unselected, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out[box] = as_mask(distance <= radius)
    return out


def erode(mask: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    """The disk element's erosion; outside the image counts as selected (the selection may go
    on beyond the frame, so the frame is not an edge)."""
    if radius <= DIRECT_RADIUS or not is_binary(mask):
        out: NDArray[Any] = cv2.erode(
            mask, disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=255
        )
        return out
    # What survives lies in the selection's box. Work there plus a ring of one pixel (all
    # unselected) where the box does not touch the frame: no pixel farther out is nearer.
    out = np.zeros_like(mask)
    if (box := _selection_box(mask, 1)) is None:
        return out
    # Distance of each pixel to the nearest unselected one (the zeros of the mask itself).
    region = np.ascontiguousarray(mask[box])
    distance = cv2.distanceTransform(region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out[box] = as_mask(distance > radius)
    return out


def _selection_box(mask: NDArray[np.uint8], margin: int) -> tuple[slice, slice] | None:
    """The selected pixels' bounding box grown by `margin` within the frame; None: none."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        return None
    height, width = mask.shape
    rows = slice(max(0, y - margin), min(height, y + h + margin))
    return rows, slice(max(0, x - margin), min(width, x + w + margin))


def feather(mask: NDArray[np.uint8], sigma: float) -> NDArray[np.uint8]:
    """A Gaussian blur, edges replicated."""
    if sigma <= DIRECT_SIGMA:
        out: NDArray[Any] = cv2.GaussianBlur(
            mask, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE
        )
        return out
    return _reduced_blur(mask, sigma, math.ceil(sigma / DIRECT_SIGMA))


def _reduced_blur(mask: NDArray[np.uint8], sigma: float, factor: int) -> NDArray[np.uint8]:
    """The blur computed on factor x factor block means, then enlarged bilinearly: within a
    level or two of the direct blur, at a cost that does not grow with sigma."""
    height, width = mask.shape
    # Whole blocks: extend right and bottom as the direct blur's replicated border would.
    fine = cv2.copyMakeBorder(
        mask, 0, -height % factor, 0, -width % factor, cv2.BORDER_REPLICATE
    ).astype(np.float32)
    rows, cols = fine.shape[0] // factor, fine.shape[1] // factor
    coarse = cv2.resize(fine, (cols, rows), interpolation=cv2.INTER_AREA)
    # One block of margin, each the mean of a block of the replicated border (so the edge
    # pixels, not the edge blocks, are what repeats outside); the blur replicates it further.
    framed = np.empty((rows + 2, cols + 2), np.float32)
    framed[1:-1, 1:-1] = coarse
    framed[0, 1:-1] = fine[0].reshape(cols, factor).mean(axis=1)
    framed[-1, 1:-1] = fine[-1].reshape(cols, factor).mean(axis=1)
    framed[1:-1, 0] = fine[:, 0].reshape(rows, factor).mean(axis=1)
    framed[1:-1, -1] = fine[:, -1].reshape(rows, factor).mean(axis=1)
    framed[0, 0], framed[0, -1] = fine[0, 0], fine[0, -1]
    framed[-1, 0], framed[-1, -1] = fine[-1, 0], fine[-1, -1]
    # Block means and bilinear enlarging blur too: about (factor^2 - 1) / 4 in variance.
    coarse_sigma = math.sqrt(max(sigma * sigma - (factor * factor - 1) / 4, 0.25)) / factor
    ksize = 2 * math.ceil(3 * coarse_sigma) + 1  # the direct 8-bit blur's reach: 3 sigma
    blurred = cv2.GaussianBlur(
        framed, (ksize, ksize), sigmaX=coarse_sigma, borderType=cv2.BORDER_REPLICATE
    )
    enlarged = cv2.resize(
        blurred, ((cols + 2) * factor, (rows + 2) * factor), interpolation=cv2.INTER_LINEAR
    )
    out: NDArray[Any] = cv2.convertScaleAbs(
        enlarged[factor : factor + height, factor : factor + width]
    )
    return out


def refine_mask(
    mask: NDArray[np.uint8],
    refine: MaskRefine,
    limits: MaskLimits = DEFAULT_LIMITS,
    field_prefix: str = "",
) -> NDArray[np.uint8]:
    """Apply `refine`; InvalidInput (naming `field_prefix` + the field) for a radius over the
    limits, before any work."""
    check_radii(refine, mask.shape, limits, field_prefix)
    out: NDArray[Any] = mask
    if refine.threshold is not None:
        out = np.where(out >= refine.threshold, 255, 0).astype(np.uint8)
    if refine.fill_holes:
        out = fill_holes(out)
    if max(refine.dilate, refine.erode) > limits.grey_max_radius and not is_binary(out):
        check_grey_radii(refine, limits, field_prefix)
    out = np.ascontiguousarray(out, dtype=np.uint8)
    if refine.dilate:
        out = dilate(out, refine.dilate)
    if refine.erode:
        out = erode(out, refine.erode)
    if refine.feather:
        out = feather(out, refine.feather)
    if refine.invert:
        out = 255 - out
    return np.ascontiguousarray(out, dtype=np.uint8)
