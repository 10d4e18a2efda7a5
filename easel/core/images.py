"""The one image codec every service uses: base64/data URL/bytes in, Pillow images out.

Limits are enforced before work is spent: the byte size before base64 decoding, the pixel
count from the header before any pixel is decoded (decompression bombs).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from easel.core.errors import InvalidInput, PayloadTooLarge
from easel.core.settings import SharedSettings

# What Pillow may decode. Anything else (PSD, EPS, ICO, ...) is refused as unsupported.
_WHITESPACE = re.compile(r"\s+")
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"})


class OutputFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"

    @property
    def media_type(self) -> str:
        return f"image/{self.value}"


# What Pillow's plugins raise on damaged data besides OSError: a corrupt TIFF's tile
# offsets, for one, end in a TypeError inside `load()` (found by the codec fuzz test).
CORRUPT_IMAGE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    ZeroDivisionError,
    struct.error,
)


@dataclass(frozen=True)
class ImageCodec:
    max_bytes: int
    max_pixels: int
    png_compress_level: int = 1
    default_quality: int = 90

    @classmethod
    def from_settings(cls, settings: SharedSettings) -> ImageCodec:
        return cls(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            png_compress_level=settings.png_compress_level,
            default_quality=settings.default_quality,
        )

    # ---- decoding ------------------------------------------------------------------------
    def decode(self, data: str | bytes, field: str) -> Image.Image:
        """Decode an image field into an RGB, RGBA or L image, EXIF orientation applied."""
        raw = self._to_bytes(data, field)
        # Pillow's warnings about damaged metadata are silenced process-wide
        # (`quiet_pillow`), not here: decode runs in pool threads, and
        # `warnings.catch_warnings` is not thread-safe (restoring the filters in one thread
        # undoes another thread's, FastAPI's included).
        image = self._open(raw, field)
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
        except CORRUPT_IMAGE_ERRORS as exc:
            raise InvalidInput.field(field, f"image data is corrupt ({exc})") from exc
        return _normalise_mode(image)

    def decode_mask(self, data: str | bytes, field: str) -> Image.Image:
        """A mask as single channel L: white (255) selects, black (0) leaves."""
        image = self.decode(data, field)
        if image.mode == "RGBA":
            alpha = image.getchannel("A")
            lowest, _ = alpha.getextrema()
            if isinstance(lowest, int) and lowest < 255:
                # A cut-out style mask: the selection is where it is opaque.
                return alpha
        return image.convert("L")

    def _to_bytes(self, data: str | bytes, field: str) -> bytes:
        if isinstance(data, bytes):
            if len(data) > self.max_bytes:
                raise self._too_large(field, len(data))
            return data
        text = data.strip()
        if text.startswith("data:"):
            header, sep, text = text.partition(",")
            if not sep or not header.endswith(";base64"):
                raise InvalidInput.field(field, "data URL must be base64 encoded")
        if not text:
            raise InvalidInput.field(field, "image is empty")
        if _WHITESPACE.search(text):  # line-wrapped base64 is common; C-speed scan first
            text = _WHITESPACE.sub("", text)
        # Bound the work before decoding: base64 is 4 chars per 3 bytes.
        size = len(text.rstrip("=")) * 3 // 4
        if size > self.max_bytes:
            raise self._too_large(field, size)
        text += "=" * (-len(text) % 4)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput.field(field, "not valid base64") from exc

    def _open(self, raw: bytes, field: str) -> Image.Image:
        try:
            # Pillow's decompression bomb warning is silenced with the others (`decode`):
            # our own pixel limit below applies.
            image = Image.open(io.BytesIO(raw))
        except Image.DecompressionBombError as exc:
            raise PayloadTooLarge(
                f"{field}: image has too many pixels",
                details=[{"field": field, "message": str(exc)}],
            ) from exc
        except CORRUPT_IMAGE_ERRORS as exc:  # UnidentifiedImageError is an OSError
            raise InvalidInput.field(field, "not a recognised image") from exc
        if image.format not in ACCEPTED_FORMATS:
            raise InvalidInput.field(
                field,
                f"unsupported image format {image.format}; use PNG, JPEG, WEBP, GIF, BMP or TIFF",
            )
        width, height = image.size
        if width * height > self.max_pixels:
            raise PayloadTooLarge(
                f"{field}: image is {width}x{height} ({width * height} pixels), over the "
                f"limit of {self.max_pixels} pixels",
                details=[{"field": field, "width": width, "height": height}],
            )
        return image

    def _too_large(self, field: str, size: int) -> PayloadTooLarge:
        mb = self.max_bytes / (1024 * 1024)
        return PayloadTooLarge(
            f"{field}: image is larger than the limit of {mb:g} MB",
            details=[{"field": field, "bytes": size, "limit_bytes": self.max_bytes}],
        )

    # ---- encoding ------------------------------------------------------------------------
    def encode(self, image: Image.Image, fmt: OutputFormat, quality: int | None = None) -> bytes:
        quality = quality or self.default_quality
        buffer = io.BytesIO()
        if fmt is OutputFormat.PNG:
            image.save(buffer, "PNG", compress_level=self.png_compress_level)
        elif fmt is OutputFormat.JPEG:
            rgb = image if image.mode in ("RGB", "L") else flatten(image)
            rgb.save(buffer, "JPEG", quality=quality)
        else:
            image.save(buffer, "WEBP", quality=quality)
        return buffer.getvalue()

    def encode_base64(
        self, image: Image.Image, fmt: OutputFormat, quality: int | None = None
    ) -> str:
        return base64.b64encode(self.encode(image, fmt, quality)).decode("ascii")


def flatten(image: Image.Image) -> Image.Image:
    """Composite onto white: what a viewer shows for a transparent image without alpha."""
    if image.mode not in ("RGBA", "LA"):
        return image.convert("RGB")
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image.convert("RGBA"), mask=image.getchannel("A"))
    return background


def _normalise_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _to_8_bit(image)
    if image.mode == "LA":
        return image.convert("RGBA")
    has_alpha = image.mode in ("PA", "RGBa", "La") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale scaled to 8 bits (Pillow's convert would clip them)."""
    values = np.asarray(image)
    scaled: np.ndarray[Any, Any]
    if image.mode == "F":
        scale = 255.0 if values.size and float(values.max()) <= 1.0 else 1.0
        scaled = np.clip(values * scale, 0, 255)
    else:  # I;16 variants and I: 16-bit samples
        scaled = np.clip(values.astype(np.int64), 0, 65535) >> 8
    return Image.fromarray(scaled.astype(np.uint8), "L")


def quiet_pillow() -> None:
    """Pillow warns about damaged metadata (e.g. a TIFF tag larger than the file) and reads
    on, and about images past its own pixel limit; the codec judges the data and enforces
    its own limit, so such a warning is only log noise."""
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
