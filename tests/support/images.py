"""Generated test images and their wire forms."""

from __future__ import annotations

import base64
import io
import math

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


# ---- helpers added for the image-utils and codec suites -----------------------------------


def pixels(image: Image.Image) -> NDArray[np.uint8]:
    """The pixels of an image as a NumPy array (H, W) or (H, W, C)."""
    return np.asarray(image, dtype=np.uint8)


def exif_jpeg(image: Image.Image, orientation: int, quality: int = 95) -> bytes:
    """A JPEG carrying an EXIF Orientation tag (0x0112)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=quality, exif=exif.tobytes())


def padded_png(image: Image.Image, total_bytes: int) -> bytes:
    """A PNG of `image` padded to `total_bytes` by a text chunk: few pixels, many bytes."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("padding", "x" * total_bytes)
    data = encode(image, "PNG", pnginfo=info)
    assert len(data) >= total_bytes
    return data


def bomb_png(width: int, height: int) -> bytes:
    """A real single-colour bilevel PNG: a few KB on the wire, width*height pixels decoded."""
    return encode(Image.new("1", (width, height), 1), "PNG", optimize=False)


def disk_offsets(radius: int) -> list[tuple[int, int]]:
    """Every (dy, dx) with dx^2 + dy^2 <= radius^2: the disk structuring element."""
    r = radius
    return [
        (dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dx * dx + dy * dy <= r * r
    ]


def _shifted(
    padded: NDArray[np.uint8], r: int, dy: int, dx: int, shape: tuple[int, ...]
) -> NDArray[np.uint8]:
    height, width = shape
    return padded[r + dy : r + dy + height, r + dx : r + dx + width]


def dilate_reference(mask: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    """Grey dilation by a disk (max of shifted copies); outside the image counts as 0."""
    padded = np.pad(mask, radius, constant_values=0)
    out = np.zeros_like(mask)
    for dy, dx in disk_offsets(radius):
        out = np.maximum(out, _shifted(padded, radius, dy, dx, mask.shape))
    return out


def erode_reference(mask: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    """Grey erosion by a disk (min of shifted copies); outside the image counts as 255."""
    padded = np.pad(mask, radius, constant_values=255)
    out = np.full_like(mask, 255)
    for dy, dx in disk_offsets(radius):
        out = np.minimum(out, _shifted(padded, radius, dy, dx, mask.shape))
    return out


def ring_mask(size: int, outer: int, inner: int) -> NDArray[np.uint8]:
    """A centred annulus: white between radii `inner` and `outer`, an enclosed black hole."""
    c = size // 2
    return disk_mask(size, size, c, c, outer) - disk_mask(size, size, c, c, inner)


def image_mime(data: bytes) -> str:
    """`image/<format>` of encoded image bytes, `application/octet-stream` if not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return f"image/{str(image.format).lower()}"
    except Exception:
        return "application/octet-stream"


def request_kwargs(fields: dict[str, object], via: str = "base64") -> dict[str, object]:
    """Keyword arguments for `httpx.Client.post` sending `fields` one of three ways.

    Image fields (PIL images, or already encoded bytes) go as base64 strings (`base64`), data
    URLs (`data_url`) or uploaded files (`multipart`). In a form the other fields become strings:
    booleans `true`/`false`, lists and objects JSON text.
    """
    import json

    images = {
        k: v if isinstance(v, bytes) else encode(v)
        for k, v in fields.items()
        if isinstance(v, Image.Image | bytes)
    }
    others = {k: v for k, v in fields.items() if k not in images}
    if via == "multipart":
        files = {k: (f"{k}.bin", data, image_mime(data)) for k, data in images.items()}

        def form_value(value: object) -> str:
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, list | dict):
                return json.dumps(value)
            return str(value)

        return {"files": files, "data": {k: form_value(v) for k, v in others.items()}}
    encoded = {k: base64.b64encode(data).decode() for k, data in images.items()}
    if via == "data_url":
        encoded = {k: f"data:{image_mime(images[k])};base64,{t}" for k, t in encoded.items()}
    elif via != "base64":
        raise ValueError(f"unknown way to send: {via}")
    return {"json": {**others, **encoded}}


def dilate_by_chords(selected: NDArray[np.bool_], radius: int) -> NDArray[np.uint8]:
    """Binary dilation by the disk, exact at any radius in O(area): a pixel is selected when
    some row y' holds a selected pixel within the disk's half-chord at |y - y'|. Written
    independently of easel (row distances by running max/min, then vertical reach)."""
    height, width = selected.shape
    far = 2**30
    cols = np.arange(width, dtype=np.int64)
    left = np.maximum.accumulate(np.where(selected, cols, -far), axis=1)
    right = np.minimum.accumulate(np.where(selected, cols, far)[:, ::-1], axis=1)[:, ::-1]
    row_gap = np.minimum(np.minimum(cols - left, right - cols), radius + 1)
    chords = [math.isqrt(radius * radius - g * g) for g in range(radius + 1)] + [-1]
    reach = np.array(chords, np.int64)[row_gap]
    rows = np.arange(height, dtype=np.int64)[:, None]
    from_above = np.maximum.accumulate(rows + reach, axis=0) >= rows
    from_below = np.minimum.accumulate((rows - reach)[::-1], axis=0)[::-1] <= rows
    return ((from_above | from_below) * 255).astype(np.uint8)
