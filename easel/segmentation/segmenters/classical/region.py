"""Regions grown from a click at the working size.

`grow` follows smooth gradients: a pixel joins when its Lab colour is within `step` of a
neighbour already in the region (OpenCV's floating-range flood fill), so a sky that drifts
from deep blue to white stays one region while a real edge (a jump between neighbours)
stops it. A slow ramp through a soft edge would still let it creep on, so a second bound,
`reach`, caps the distance from the clicked colour. A ladder of (step, reach) pairs gives
nested readings of one click, from the tight to the loose; the score picks among them.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

Mask = NDArray[np.uint8]  # 0/1

# (step: largest Lab difference between neighbours, reach: largest distance from the click)
LADDER = ((1.5, 15.0), (2.5, 25.0), (3.5, 40.0), (5.0, 60.0), (7.0, 90.0))
HOLE_SHARE = 0.1  # holes under this share of the region are highlights or specks: filled


def distances(lab_u8: NDArray[np.uint8], seeds: list[tuple[int, int]]) -> list[NDArray[np.float32]]:
    """Each pixel's Lab distance to each seed's colour (the mean of a 5x5 patch)."""
    lab = lab_u8.astype(np.float32)
    found = []
    for x, y in seeds:
        colour = lab[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].reshape(-1, 3).mean(axis=0)
        found.append(np.asarray(np.linalg.norm(lab - colour, axis=2), np.float32))
    return found


def grow(
    lab: NDArray[np.uint8],
    seeds: list[tuple[int, int]],
    seed_distances: list[NDArray[np.float32]],
    blocked: Mask,
    step: float,
    reach: float,
) -> Mask:
    """The pixels joined to any seed through neighbours within `step` and colours within
    `reach` of that seed's colour (`seed_distances`, from `distances`); `blocked` pixels
    never join."""
    height, width = lab.shape[:2]
    region = np.zeros((height, width), np.uint8)
    flags = 4 | (2 << 8) | cv2.FLOODFILL_MASK_ONLY
    for (x, y), distance in zip(seeds, seed_distances, strict=True):
        fence = np.zeros((height + 2, width + 2), np.uint8)
        fence[1:-1, 1:-1] = (distance > reach) | (blocked > 0)
        fence[y + 1, x + 1] = 0
        cv2.floodFill(lab, fence, (x, y), 0, (step,) * 3, (step,) * 3, flags)
        region |= fence[1:-1, 1:-1] == 2
    return fill_small_holes(region)


def fill_small_holes(region: Mask, share: float = HOLE_SHARE) -> Mask:
    """Close the holes smaller than `share` of the region (a highlight on a ball, noise),
    keeping the large ones (the inside of a ring)."""
    outside = np.pad(1 - region, 1, constant_values=1)
    count, parts, stats, _ = cv2.connectedComponentsWithStats(outside, connectivity=4)
    if count <= 2:
        return region
    border = parts[0, 0]
    small = stats[:, cv2.CC_STAT_AREA] < share * max(1, int(region.sum()))
    small[[0, border]] = False
    return np.asarray(region | small[parts[1:-1, 1:-1]], np.uint8)


def seed_region(lab: NDArray[np.float32], seeds: list[tuple[int, int]], radius: int,
                tolerance: float) -> NDArray[np.bool_]:  # fmt: skip
    """Pixels connected to a seed through colours within `tolerance` of the clicked one
    (a fixed range: on a blurred coarse copy, a fine texture reads as its mean colour)."""
    region = np.zeros(lab.shape[:2], bool)
    for x, y in seeds:
        disk = np.zeros(lab.shape[:2], np.uint8)
        cv2.circle(disk, (x, y), radius, 1, -1)
        colour = lab[disk > 0].mean(axis=0)
        close = (np.linalg.norm(lab - colour, axis=2) < tolerance).astype(np.uint8)
        _, components = cv2.connectedComponents(close, connectivity=4)
        label = components[y, x]
        region |= (components == label) if label else disk > 0
    return region


def connected(selected: Mask, points: list[tuple[int, int]]) -> Mask:
    """Keep the parts holding a positive click (or the largest, for a box alone)."""
    count, components = cv2.connectedComponents(selected, connectivity=8)
    if count <= 2:
        return selected
    keep = {int(components[y, x]) for x, y in points} - {0}
    if not keep:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        keep = {int(sizes.argmax())}
    return np.isin(components, list(keep)).astype(np.uint8)


def split_off(
    selected: Mask,
    positive: list[tuple[int, int]],
    negative: list[tuple[int, int]],
    radius: int,
) -> Mask:
    """Drop the part of the selection nearer (through it) to a negative click than to a
    positive one: a same-coloured region that the colour model cannot tell apart is cut at
    its narrowest neck, as a watershed of the distance to the selection's outline does."""
    whole = selected.copy()
    inside = []
    for x, y in negative:
        spot = np.zeros_like(selected)
        cv2.circle(spot, (x, y), radius, 1, -1)
        near = np.asarray(cv2.dilate(spot, np.ones((3, 3), np.uint8)), np.uint8)
        if (near & selected).any():
            inside.append((x, y))
            whole |= spot  # the clicked spot itself was made background: close that hole
    if not inside:
        return selected
    # Capped: with nothing unselected the transform answers a huge number everywhere.
    distance = np.minimum(cv2.distanceTransform(whole, cv2.DIST_L2, 3), sum(whole.shape))
    relief = (255 - 255 * distance / max(float(distance.max()), 1.0)).astype(np.uint8)
    markers = np.where(whole > 0, 0, 1).astype(np.int32)
    markers[[0, -1], :] = 1
    markers[:, [0, -1]] = 1
    for x, y in inside:
        markers[y, x] = 3
    for x, y in positive:
        markers[y, x] = 2
    cv2.watershed(cv2.cvtColor(relief, cv2.COLOR_GRAY2BGR), markers)
    return np.asarray((markers == 2) & (selected > 0), np.uint8)
