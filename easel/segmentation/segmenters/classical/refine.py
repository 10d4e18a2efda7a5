"""Outlines refined: GrabCut on a coarse copy (colour models that hold a textured object
together), a watershed on the working copy (the outline moved onto the real edges nearby),
and the resizing between the sizes."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

Mask = NDArray[np.uint8]  # 0/1


def grabcut(coarse: NDArray[np.uint8], trimap: NDArray[np.uint8]) -> Mask:
    """GrabCut from a trimap (`cv2.GC_*` labels) at the coarse size: the selected pixels."""
    if np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD)).any() and (trimap != cv2.GC_FGD).any():
        background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
        try:
            # GrabCut seeds k-means from OpenCV's (per-thread) RNG: the same request gives
            # the same mask. The rectangle is unused when starting from a mask.
            cv2.setRNGSeed(0)
            cv2.grabCut(coarse, trimap, (0, 0, 0, 0), background, foreground, 2,
                        cv2.GC_INIT_WITH_MASK)  # fmt: skip
        except cv2.error:
            pass  # one colour class too small to model: keep the seeds as they are
    return np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)


def snap(work: NDArray[np.uint8], mask: Mask) -> Mask:
    """`mask` (any size) at the working size, its outline moved onto the nearest real edges
    of `work` within a band about one coarse pixel wide."""
    height, width = work.shape[:2]
    fine = as_u8(cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST))
    band = max(2, round(1.5 * width / mask.shape[1]))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    markers = np.zeros((height, width), np.int32)
    markers[cv2.erode(1 - fine, kernel) > 0] = 1
    markers[cv2.erode(fine, kernel) > 0] = 2
    if (markers == 2).any() and (markers == 1).any():
        cv2.watershed(work, markers)
        fine = (markers == 2).astype(np.uint8)
    return fine


def resize(rgb: NDArray[np.uint8], scale: float) -> NDArray[np.uint8]:
    if scale >= 1:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return as_u8(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def upscale(mask: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """A 0/255 mask brought to (width, height), its outline smoothed rather than blocky."""
    if mask.shape == (height, width):
        return mask
    smooth = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(smooth >= 128, 255, 0).astype(np.uint8)


def as_u8(array: object) -> NDArray[np.uint8]:
    return np.asarray(array, dtype=np.uint8)
