"""A photo-like scene set with ground truth, for the segmenters' quality test and benchmark.

Each scene is generated from a seed (the same seed and size give the same pixels) and holds
several objects, each with its ground-truth mask and an interior click (the object's most
interior pixel, where a person would click):

- `landscape`: a sky gradient, grass texture with blades, a radially shaded ball with a soft
  shadow, a tree (leafy canopy on a thin trunk), all with sensor noise;
- `touching`: boxes of one hue and slightly different lightness side by side on a shaded
  wall (touching objects of similar colour);
- `thin`: a pole, a ring and a thin diagonal rod on a gradient;
- `shapes`: the textured shapes of `tests/segmentation/scenes.py` (stripes, checks,
  speckle, objects on the border, distractors).

`corrective_click` is the second click a person would make after seeing the first mask: a
negative click on the largest false-positive area, or a positive one on the largest miss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tests.segmentation.scenes import iou, make_scene

__all__ = [
    "KINDS",
    "PhotoScene",
    "Target",
    "corrective_click",
    "iou",
    "make_photo_scene",
    "scene_set",
    "targets",
]

KINDS = ("landscape", "touching", "thin", "shapes")
Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class Target:
    name: str  # e.g. "landscape/sky"
    truth: Mask
    click: tuple[int, int]  # (x, y)


@dataclass(frozen=True)
class PhotoScene:
    name: str
    image: Image.Image
    targets: list[Target]


def interior(mask: Mask) -> tuple[int, int]:
    """The mask's most interior pixel (x, y): the farthest from its outline."""
    padded = np.pad(mask.astype(np.uint8), 1)
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return int(x), int(y)


def corrective_click(predicted: NDArray[np.generic], truth: Mask) -> tuple[tuple[int, int], int]:
    """The second click: ((x, y), label), 0 on the largest false-positive part, 1 on the
    largest missed part (whichever is larger)."""
    selected = np.asarray(predicted) > 127 if predicted.dtype == np.uint8 else predicted
    parts = []
    for wrong, label in ((selected & ~truth, 0), (truth & ~selected, 1)):
        count, components = cv2.connectedComponents(wrong.astype(np.uint8), connectivity=4)
        if count > 1:
            sizes = np.bincount(components.ravel())[1:]
            largest = components == 1 + int(np.argmax(sizes))
            parts.append((int(sizes.max()), label, largest))
    if not parts:
        return interior(truth), 1
    _, label, largest = max(parts, key=lambda part: part[0])
    return interior(largest), label


def scene_set(size: int = 512, count: int = 2) -> Iterator[PhotoScene]:
    """`count` scenes of each kind; sizes vary around `size` (0.75x, 1x, 1.5x by seed)."""
    for index in range(count):
        for kind in KINDS:
            seed = 1000 * KINDS.index(kind) + index
            side = round(size * (0.75, 1.0, 1.5)[index % 3]) // 8 * 8
            yield _MAKERS[kind](seed, side)


def make_photo_scene(kind: str, seed: int, size: int) -> PhotoScene:
    """One scene of `kind` (one of `KINDS`), `size` pixels square."""
    return _MAKERS[kind](seed, size)


def targets(size: int = 512, count: int = 2) -> Iterator[tuple[PhotoScene, Target]]:
    for scene in scene_set(size, count):
        for target in scene.targets:
            yield scene, target


# ---- drawing ------------------------------------------------------------------------------
def _grid(height: int, width: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return y, x


def _disc(shape: tuple[int, int], cx: float, cy: float, radius: float) -> Mask:
    y, x = _grid(*shape)
    return np.asarray((x - cx) ** 2 + (y - cy) ** 2 <= radius**2)


def _finish(rng: np.random.Generator, image: NDArray[np.float64], noise: float) -> Image.Image:
    noisy = image + rng.normal(0, noise, image.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def _target(name: str, truth: Mask) -> Target | None:
    return Target(name=name, truth=truth, click=interior(truth)) if truth.sum() > 50 else None


def _scene(name: str, image: Image.Image, found: list[tuple[str, Mask]]) -> PhotoScene:
    kept = [t for t in (_target(f"{name}/{part}", mask) for part, mask in found) if t]
    return PhotoScene(name=name, image=image, targets=kept)


def _landscape(seed: int, size: int) -> PhotoScene:
    rng = np.random.default_rng(seed)
    h = w = size
    y, x = _grid(h, w)
    horizon = h * rng.uniform(0.45, 0.6) + h * 0.02 * np.sin(x / w * rng.uniform(2, 6))
    sky = y < horizon
    top, low = np.array([40, 90, 200]) + rng.uniform(-20, 20, 3), np.array([190, 215, 240])
    t = np.clip(y / horizon, 0, 1)[..., None]
    image = top * (1 - t) + low * t + (x / w - 0.5)[..., None] * rng.uniform(-20, 20, 3)
    # Grass: a green base, blotches at two scales, short dark and light blades.
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), size / 60)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 1.0)
    shade = 1 + 0.5 * blotch / max(float(np.abs(blotch).max()), 1e-6) + 1.2 * fine
    grass = np.array([70, 140, 50]) * shade[..., None] * (0.8 + 0.3 * (y / h))[..., None]
    for _ in range(size * 3):
        bx, by = rng.uniform(0, w), rng.uniform(horizon.min(), h)
        length = rng.uniform(0.01, 0.03) * size
        tone = (30, 80, 20) if rng.random() < 0.5 else (120, 190, 80)
        end = (int(bx + rng.uniform(-0.3, 0.3) * length), int(by - length))
        cv2.line(grass, (int(bx), int(by)), end, tone, max(1, size // 400))
    image = np.where(sky[..., None], image, grass)
    ground = ~sky
    # The tree: trunk then a canopy of overlapping discs, with leafy texture.
    tx = w * rng.uniform(0.12, 0.3)
    base = float(horizon[0, int(tx)]) + h * 0.05
    crown_r = size * rng.uniform(0.1, 0.14)
    crown_y = base - size * rng.uniform(0.28, 0.34)
    trunk = (abs(x - tx) <= size * 0.012) & (y > crown_y) & (y < base)
    canopy = np.zeros((h, w), bool)
    for _ in range(5):
        canopy |= _disc((h, w), tx + rng.normal(0, 0.5) * crown_r, crown_y + rng.normal(0, 0.4)
                        * crown_r, crown_r * rng.uniform(0.6, 0.9))  # fmt: skip
    leaves = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), max(1.0, size / 300))
    leafy = (
        np.array([30, 90, 35])
        * (1 + 0.9 * leaves / max(float(np.abs(leaves).max()), 1e-6))[..., None]
    )
    image = np.where(trunk[..., None], np.array([95, 65, 40]), image)
    image = np.where(canopy[..., None], leafy, image)
    tree = trunk | canopy
    # The ball on the grass, lit from the upper left, with a soft shadow to the right.
    radius = size * rng.uniform(0.07, 0.13)
    bx = w * rng.uniform(0.55, 0.8)
    by = min(h - radius * 1.2, float(horizon[0, int(bx)]) + radius * rng.uniform(1.3, 2.5))
    shadow = np.zeros((h, w), np.float64)
    cv2.ellipse(shadow, (int(bx + radius * 0.6), int(by + radius * 0.85)),
                (int(radius * 1.2), int(radius * 0.35)), 0, 0, 360, 1.0, -1)  # fmt: skip
    shadow = cv2.GaussianBlur(shadow, (0, 0), radius * 0.15)
    image = image * (1 - 0.55 * shadow * ground)[..., None]
    ball = _disc((h, w), bx, by, radius)
    nx, ny = (x - bx) / radius, (y - by) / radius
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    light = np.clip(-0.5 * nx - 0.5 * ny + 0.7 * nz, 0, 1)
    colour = np.array([200, 40, 40]) if rng.random() < 0.5 else np.array([230, 160, 30])
    lit = colour * (0.3 + 0.7 * light)[..., None] + 60 * light[..., None] ** 20
    image = np.where(ball[..., None], lit, image)
    found = [
        ("sky", sky & ~tree & ~ball),
        ("ball", ball),
        ("tree", tree & ~ball),
        ("grass", ground & ~tree & ~ball),
    ]
    return _scene(f"landscape-{seed}-{size}", _finish(rng, image, 6.0), found)


def _touching(seed: int, size: int) -> PhotoScene:
    rng = np.random.default_rng(seed)
    h = w = size
    y, x = _grid(h, w)
    wall = np.array([200, 190, 170]) + rng.uniform(-30, 30, 3)
    image = wall * (0.75 + 0.35 * (x / w))[..., None] * np.ones((h, w, 1))
    hue = rng.uniform(40, 200, 3)
    count = 3
    left, top = w * 0.12, h * rng.uniform(0.3, 0.45)
    widths = rng.uniform(0.18, 0.28, count) * w
    found = []
    occupied = np.zeros((h, w), bool)
    for index in range(count):
        right = min(w * 0.97, left + widths[index])
        bottom = h * rng.uniform(0.75, 0.9)
        box = (x >= left) & (x < right) & (y >= top + index * h * 0.04) & (y < bottom)
        tone = (0.82, 1.0, 1.18)[index] * hue
        shading = (1.0 - 0.25 * (y - top) / h)[..., None]
        image = np.where(box[..., None], tone * shading, image)
        found.append((f"box{index}", box & ~occupied))
        occupied |= box
        left = right
    return _scene(f"touching-{seed}-{size}", _finish(rng, image, 6.0), found)


def _thin(seed: int, size: int) -> PhotoScene:
    rng = np.random.default_rng(seed)
    h = w = size
    y, x = _grid(h, w)
    top, bottom = rng.uniform(120, 230, 3), rng.uniform(60, 160, 3)
    image = top * (1 - y / h)[..., None] + bottom * (y / h)[..., None]
    px = w * rng.uniform(0.15, 0.3)
    pole = (abs(x - px) <= size * 0.012) & (y > h * 0.1)
    ring = np.zeros((h, w), np.uint8)
    centre = (int(w * rng.uniform(0.6, 0.7)), int(h * rng.uniform(0.3, 0.45)))
    cv2.circle(ring, centre, int(size * 0.16), 1, max(2, int(size * 0.035)))
    rod = np.zeros((h, w), np.uint8)
    start, end = (int(w * 0.45), int(h * 0.92)), (int(w * 0.95), int(h * 0.62))
    cv2.line(rod, start, end, 1, max(2, int(size * 0.02)))
    found: list[tuple[str, Mask]] = []
    for name, mask, colour in (
        ("pole", pole, (60, 60, 70)),
        ("ring", ring > 0, (220, 180, 40)),
        ("rod", rod > 0, (180, 40, 60)),
    ):
        image = np.where(mask[..., None], np.array(colour, np.float64), image)
        found = [(other, seen & ~mask) for other, seen in found] + [(name, mask)]
    return _scene(f"thin-{seed}-{size}", _finish(rng, image, 6.0), found)


def _shapes(seed: int, size: int) -> PhotoScene:
    scene = make_scene(seed, size)
    target = Target(name=f"shapes-{seed}-{size}/target", truth=scene.truth, click=scene.click)
    return PhotoScene(name=f"shapes-{seed}-{size}", image=scene.image, targets=[target])


_MAKERS = {"landscape": _landscape, "touching": _touching, "thin": _thin, "shapes": _shapes}
