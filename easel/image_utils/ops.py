"""The image operations themselves: pure functions of Pillow images and NumPy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from easel.core.errors import InvalidInput

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def target_size(
    size: tuple[int, int],
    *,
    width: int | None,
    height: int | None,
    scale: float | None,
    fit: str,
) -> tuple[int, int]:
    """The output size of a resize; for `cover` the size before the centre crop."""
    src_w, src_h = size
    if scale is not None:
        return max(1, round(src_w * scale)), max(1, round(src_h * scale))
    if fit == "stretch":
        assert width and height
        return width, height
    ratios = [r for r in (width and width / src_w, height and height / src_h) if r]
    ratio = max(ratios) if fit == "cover" else min(ratios)
    return max(1, round(src_w * ratio)), max(1, round(src_h * ratio))


def resize(
    image: Image.Image,
    *,
    width: int | None,
    height: int | None,
    scale: float | None,
    fit: str,
    resample: str,
) -> Image.Image:
    new_size = target_size(image.size, width=width, height=height, scale=scale, fit=fit)
    out = image.resize(new_size, RESAMPLING[resample])
    if fit == "cover" and width and height:
        left = (out.width - width) // 2
        top = (out.height - height) // 2
        out = out.crop((left, top, left + width, top + height))
    return out


def crop(image: Image.Image, *, x: int, y: int, width: int, height: int) -> Image.Image:
    if x >= image.width:
        raise InvalidInput.field("x", f"must be below the image width {image.width}")
    if y >= image.height:
        raise InvalidInput.field("y", f"must be below the image height {image.height}")
    if x + width > image.width:
        raise InvalidInput.field("width", f"x + width exceeds the image width {image.width}")
    if y + height > image.height:
        raise InvalidInput.field("height", f"y + height exceeds the image height {image.height}")
    return image.crop((x, y, x + width, y + height))


def require_same_size(image: Image.Image, other: Image.Image, field: str, of: str) -> None:
    if image.size != other.size:
        raise InvalidInput.field(
            field,
            f"size {other.width}x{other.height} does not match {of} size "
            f"{image.width}x{image.height}",
        )


def bounding_box(mask: NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2), exclusive end, of the non-zero pixels; None when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def extract_object(
    image: Image.Image, mask: Image.Image, *, crop_to_mask: bool, padding: int
) -> Image.Image:
    """The image with alpha = mask (times any alpha it had)."""
    require_same_size(image, mask, "mask", "image")
    rgba = np.array(image.convert("RGBA"))
    selection = np.asarray(mask, dtype=np.uint8)
    alpha = rgba[..., 3].astype(np.uint16) * selection // 255
    rgba[..., 3] = alpha.astype(np.uint8)
    out = Image.fromarray(rgba, "RGBA")
    if crop_to_mask:
        box = bounding_box(rgba[..., 3])
        if box is None:
            raise InvalidInput.field("mask", "selects nothing, so there is nothing to crop to")
        x1, y1, x2, y2 = box
        out = out.crop(
            (
                max(0, x1 - padding),
                max(0, y1 - padding),
                min(out.width, x2 + padding),
                min(out.height, y2 + padding),
            )
        )
    return out


@dataclass(frozen=True)
class Difference:
    mae: float
    max_error: int
    changed_fraction: float
    heatmap: Image.Image


def diff(image_a: Image.Image, image_b: Image.Image) -> Difference:
    require_same_size(image_a, image_b, "image_b", "image_a")
    a = np.asarray(image_a.convert("RGB"), dtype=np.int16)
    b = np.asarray(image_b.convert("RGB"), dtype=np.int16)
    absolute = np.abs(a - b).astype(np.uint8)
    per_pixel = absolute.mean(axis=2).round().astype(np.uint8)
    heat_bgr = cv2.applyColorMap(per_pixel, cv2.COLORMAP_JET)
    return Difference(
        mae=float(absolute.mean()),
        max_error=int(absolute.max()),
        changed_fraction=float(absolute.any(axis=2).mean()),
        heatmap=Image.fromarray(cv2.cvtColor(heat_bgr, cv2.COLOR_BGR2RGB), "RGB"),
    )
