"""Later clicks correct the first click's answer instead of starting over.

A second click is the user fixing what the first one gave: a positive one on a part that
was missed, a negative one on a part that should not be there. Solving all clicks afresh
lets a tight region around the new click outscore the whole object (a missed pocket of
sky), or cuts the object at a neck (a strip along its edge); so the answer to the first
positive click (and the box) is the base, and each rung of the tolerance ladder gives one
corrected reading: the base, plus what grows from the other positive clicks, less what
grows inside it from the negative ones.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from easel.segmentation.segmenters.classical import region

Mask = NDArray[np.uint8]  # 0/1, the working size
Point = tuple[int, int]


def corrected(
    lab: NDArray[np.uint8],
    base: Mask,
    positive: list[Point],
    negative: list[Point],
    radius: int,
) -> list[Mask]:
    """The readings, one per rung of `region.LADDER`, of `base` with the clicks after the
    first applied (`positive[1:]` added, `negative` taken out); each holds every positive
    click and none of the negative ones until its outline is snapped (which may move a
    click lying on an edge to the other side). A rung where what a negative click takes out
    reaches a positive one (one colour throughout: no correction can tell them apart)
    gives none; with none at all, the caller solves the clicks together instead."""
    added_seeds = [p for p in positive[1:] if not base[p[1], p[0]]]
    removed_seeds = [n for n in negative if base[n[1], n[0]]]
    spots = _spots(base.shape, negative, radius // 2)
    near_positive = _spots(base.shape, positive, radius)
    add_distances = region.distances(lab, added_seeds)
    remove_distances = region.distances(lab, removed_seeds)
    readings = []
    for step, reach in region.LADDER:
        mask = base.copy()
        if added_seeds:
            mask |= region.grow(lab, added_seeds, add_distances, spots, step, reach)
        if removed_seeds:
            outside = (1 - mask).astype(np.uint8)
            removed = region.grow(lab, removed_seeds, remove_distances, outside, step, reach)
            if (removed & near_positive).any():
                continue
            mask &= 1 - removed
        mask &= 1 - spots
        readings.append(region.connected(mask, positive))
    return readings


def _spots(shape: tuple[int, ...], points: list[Point], radius: int) -> Mask:
    spots = np.zeros(shape[:2], np.uint8)
    for x, y in points:
        cv2.circle(spots, (x, y), max(1, radius), 1, -1)
    return spots
