"""Generated scenes with known ground truth for the segmenters.

A scene is a noisy gradient background with a few shapes (ellipses, rectangles, polygons)
filled with solid colours, stripes, checks or speckle, all with sensor-like noise on top.
The target is drawn last, so its shape is exactly its ground-truth mask; some targets lean
on distractors or on the image border. `click` is the target's most interior pixel, where a
person would click.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

FILLS = ("solid", "stripes", "checks", "speckle")
KINDS = ("ellipse", "rectangle", "polygon")


@dataclass(frozen=True)
class Scene:
    image: Image.Image
    truth: NDArray[np.bool_]  # the target's pixels
    click: tuple[int, int]  # (x, y) inside the target
    distractors: list[NDArray[np.bool_]]  # the other shapes' visible pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def box(self, margin: float = 0.04) -> list[int]:
        """The target's bounding box, loosened by `margin` of the image side, as a person
        would drag it."""
        ys, xs = np.nonzero(self.truth)
        pad = round(margin * max(self.size))
        width, height = self.size
        return [
            max(0, int(xs.min()) - pad),
            max(0, int(ys.min()) - pad),
            min(width - 1, int(xs.max()) + pad),
            min(height - 1, int(ys.max()) + pad),
        ]


def iou(mask: NDArray[np.generic], truth: NDArray[np.bool_]) -> float:
    predicted = np.asarray(mask) > 127 if np.asarray(mask).dtype == np.uint8 else mask
    union = np.logical_or(predicted, truth).sum()
    return float(np.logical_and(predicted, truth).sum() / union) if union else 1.0


def _colour(rng: np.random.Generator, away_from: NDArray[np.float64]) -> NDArray[np.float64]:
    # A colour clearly apart from `away_from` (the local background), as real objects are.
    while True:
        colour = rng.uniform(20, 235, 3)
        if np.linalg.norm(colour - away_from) > 90:
            return colour


def _shape_mask(
    rng: np.random.Generator, size: int, kind: str, centre: NDArray[np.float64], radius: float
) -> NDArray[np.bool_]:
    canvas = np.zeros((size, size), np.uint8)
    cx, cy = (int(v) for v in centre)
    if kind == "ellipse":
        axes = (int(radius), int(radius * rng.uniform(0.6, 1.0)))
        cv2.ellipse(canvas, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    elif kind == "rectangle":
        rect = ((cx, cy), (2 * radius, 2 * radius * rng.uniform(0.6, 1.0)), rng.uniform(0, 90))
        cv2.fillPoly(canvas, [cv2.boxPoints(rect).astype(np.int32)], 255)
    else:
        corners = int(rng.integers(3, 7))
        angles = np.linspace(0, 2 * np.pi, corners, endpoint=False) + rng.uniform(0, np.pi)
        radii = radius * rng.uniform(0.8, 1.0, corners)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [points.astype(np.int32)], 255)
    return canvas > 0


def _fill(
    rng: np.random.Generator, size: int, fill: str, colour: NDArray[np.float64]
) -> NDArray[np.float64]:
    layer = np.broadcast_to(colour, (size, size, 3)).astype(np.float64)
    second = np.clip(colour * rng.uniform(0.55, 0.8) + rng.uniform(-20, 20, 3), 0, 255)
    period = max(4, size // 64)
    y, x = np.mgrid[0:size, 0:size]
    if fill == "stripes":
        pattern = ((x + y) // period) % 2 == 1
    elif fill == "checks":
        pattern = ((x // period) + (y // period)) % 2 == 1
    elif fill == "speckle":
        pattern = rng.random((size, size)) < 0.3
    else:
        return layer
    return np.where(pattern[..., None], second, layer)


def make_scene(seed: int, size: int = 512, *, shapes: int = 4, noise: float = 10.0) -> Scene:
    """A square scene; the same seed and size give the same scene."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    top, bottom = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    blend = (0.6 * y + 0.4 * x)[..., None]
    image = top * (1 - blend) + bottom * blend
    visible: list[NDArray[np.bool_]] = []
    for index in range(shapes):
        is_target = index == shapes - 1
        radius = size * rng.uniform(0.08, 0.22)
        # Targets mostly sit inside; one in four leans on the border.
        lo = radius * (0.4 if is_target and rng.random() < 0.25 else 1.05)
        centre = rng.uniform(lo, size - lo, 2)
        mask = _shape_mask(rng, size, str(rng.choice(KINDS)), centre, radius)
        if not mask.any():
            continue
        local = image[mask].mean(axis=0)
        colour = _colour(rng, local)
        image = np.where(mask[..., None], _fill(rng, size, str(rng.choice(FILLS)), colour), image)
        visible = [v & ~mask for v in visible]
        visible.append(mask)
    image = image + rng.normal(0, noise, image.shape)
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    truth = visible[-1]
    inside = cv2.distanceTransform(truth.astype(np.uint8), cv2.DIST_L2, 5)
    cy, cx = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return Scene(
        image=Image.fromarray(pixels, "RGB"),
        truth=truth,
        click=(int(cx), int(cy)),
        distractors=[v for v in visible[:-1] if v.any()],
    )
