"""One score for every candidate mask, 0-1, whatever produced it, so the list can be sorted.

A good mask is one a person would draw: its outline runs along visible edges (`edge`: the
outline of a dot inside a sky crosses no edge), what it holds looks unlike what surrounds it
(`distinct`, one minus the overlap of the colour histograms of a band inside the outline
and a ring outside it: one stripe of a striped shirt, or a fleck of grass, has its own
colours all around it), and it is neither a speck nor most of the image (`size_prior`;
of two readings that both follow edges, such as one of two touching boxes and both, the
tighter wins). The product keeps each a veto.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

EDGE = 4.0  # Lab gradient (per pixel, working size) that counts as a full-strength edge
RING = 0.03  # width of the bands compared by `distinct`, as a share of the image's side
BINS = 16**3
SPECK = 0.02  # side of a region too small to be an object, as a share of the image's
LARGE = 1.25  # how strongly a larger reading loses to a tighter one


@dataclass(frozen=True)
class ScoreMaps:
    gradient: NDArray[np.float32]  # its gradient magnitude
    bins: NDArray[np.uint16]  # each pixel's colour bin (`colour_bins`)


def colour_bins(lab: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """Each pixel's bin in a coarse Lab histogram (16 x 16 x 16 of the 8-bit channels)."""
    q = (lab >> 4).astype(np.uint16)
    return np.asarray(q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2], np.uint16)


def lab_gradient(lab: NDArray[np.float32]) -> NDArray[np.float32]:
    """Per-pixel Lab gradient magnitude (Sobel, normalised to a difference per pixel)."""
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(np.sqrt((gx * gx + gy * gy).sum(axis=2)) / 8, np.float32)


def parts(mask: NDArray[np.uint8], maps: ScoreMaps) -> tuple[float, float]:
    """(edge, distinct) of a 0/1 mask at the working size."""
    height, width = mask.shape
    if not mask.any() or mask.all():
        return 0.0, 0.0
    outline = mask - cv2.erode(mask, np.ones((3, 3), np.uint8))
    outline[[0, -1], :] = 0  # the image's border is no edge of the object's
    outline[:, [0, -1]] = 0
    values = maps.gradient[outline > 0]
    edge = float(np.clip(values / EDGE, 0, 1).mean()) if values.size else 0.0
    radius = max(2, round(RING * max(height, width)))
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)  # square: separable, fast
    core = cv2.erode(mask, kernel)
    ring = (cv2.dilate(mask, kernel) > 0) & (mask == 0)
    band = (mask > 0) & (core == 0)
    distinct = 0.0
    if ring.any():
        inside = np.bincount(maps.bins[band], minlength=BINS) / max(1, int(band.sum()))
        outside = np.bincount(maps.bins[ring], minlength=BINS) / max(1, int(ring.sum()))
        distinct = 1 - float(np.minimum(inside, outside).sum())
    return edge, distinct


def score(mask: NDArray[np.uint8], maps: ScoreMaps) -> float:
    """The candidate's score, 0-1."""
    edge, distinct = parts(mask, maps)
    return edge * distinct * size_prior(mask)


def size_prior(mask: NDArray[np.uint8]) -> float:
    """Neither a speck (a fragment of texture) nor most of the image (a leak)."""
    area = int(np.count_nonzero(mask))
    speck = (SPECK * max(mask.shape)) ** 2
    return (1 - float(np.exp(-area / speck))) * float((1 - area / mask.size) ** LARGE)
