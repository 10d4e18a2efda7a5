"""Generated test images and their wire forms."""

from __future__ import annotations

import base64
import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def b64(image: Image.Image, fmt: str = "PNG", **params: object) -> str:
    return base64.b64encode(encode(image, fmt, **params)).decode()


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    return f"data:image/{fmt.lower()};base64,{b64(image, fmt)}"


def decode_b64(text: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    image.load()
    return image


def noise_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(axis=2) if channels == 1 else pixels, mode)


def scene(width: int = 96, height: int = 64, seed: int = 1) -> Image.Image:
    """Smooth gradient background with a few solid shapes: structure for edges and resizes."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), np.full_like(x, 80)], axis=-1
    ).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        base[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.integers(0, 256, 3)
    return Image.fromarray(base, "RGB")


def disk_mask(width: int, height: int, cx: int, cy: int, r: int) -> NDArray[np.uint8]:
    y, x = np.ogrid[0:height, 0:width]
    return (((x - cx) ** 2 + (y - cy) ** 2 <= r * r) * 255).astype(np.uint8)
