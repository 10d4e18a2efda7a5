"""Images in and out of the SDK: a path, bytes or a PIL image in (sent as base64 in the
JSON body); base64 out, decoded to PIL images or kept as bytes."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TypeAlias

from PIL import Image

ImageInput: TypeAlias = str | Path | bytes | bytearray | Image.Image
"""A path to an image file, its encoded bytes, or a PIL image (sent as PNG)."""


def image_bytes(image: ImageInput) -> bytes:
    """The encoded bytes of `image`; a PIL image is encoded as PNG."""
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, str | Path):
        return Path(image).expanduser().read_bytes()
    raise TypeError(f"an image is a path, bytes or a PIL image, not {type(image).__name__}")


def encode_image(image: ImageInput) -> str:
    """`image` as the base64 string a request field takes."""
    return base64.b64encode(image_bytes(image)).decode("ascii")


def encode_optional(image: ImageInput | None) -> str | None:
    return None if image is None else encode_image(image)


def decode_bytes(data: str) -> bytes:
    """The bytes of a base64 image field (with or without a `data:` prefix)."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    return base64.b64decode(data)


def open_image(data: bytes) -> Image.Image:
    """Encoded image bytes as a PIL image, fully loaded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def decode_image(data: str) -> Image.Image:
    """A base64 image field as a PIL image, fully loaded."""
    return open_image(decode_bytes(data))
