"""Hypothesis over the image codec: random, truncated, corrupted and huge-declared PNG, JPEG,
WebP, GIF, TIFF and BMP bytes (raw, base64 and data URLs). Whatever arrives, the codec
answers an image within its limits or a 4xx-class `EaselError`, never another exception,
and it stays within a bounded amount of memory doing so."""

from __future__ import annotations

import base64
import io
import resource
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from easel.core.errors import EaselError, PayloadTooLarge
from easel.core.images import ImageCodec

MB = 1024 * 1024
MAX_PIXELS = 1_000_000
# Address space a decode may add to the process: a legal image here is at most 1 MP (4 MB
# as RGBA, a few copies while normalising); a decoder that believed a declared size would
# ask for gigabytes.
MEMORY_CAP = 512 * MB
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP")
MODES = ("RGB", "RGBA", "L", "P", "1")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written under the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CODEC = ImageCodec(max_bytes=2 * MB, max_pixels=MAX_PIXELS)


@contextmanager
def address_space_cap(extra: int) -> Iterator[None]:
    """Refuse allocations beyond `extra` bytes over what the process maps now: a decode
    that tries to allocate more gets a MemoryError, which the test reports as a crash."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def judge(data: str | bytes, *, mask: bool = False) -> EaselError | Image.Image:
    """The codec's answer, under the memory cap; any exception but a 4xx `EaselError`
    fails the test with the input that caused it."""
    decode = CODEC.decode_mask if mask else CODEC.decode
    try:
        with address_space_cap(MEMORY_CAP):
            image = decode(data, "image")
    except EaselError as exc:
        assert 400 <= exc.status < 500, (exc.status, exc.message)
        assert exc.status in (413, 422)
        return exc
    assert image.width * image.height <= MAX_PIXELS
    assert image.mode in ("RGB", "RGBA", "L")
    return image


# ---- strategies ------------------------------------------------------------------------------


@st.composite
def encoded_images(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    noise = draw(st.binary(min_size=width * height * 4, max_size=width * height * 4))
    image = Image.frombytes("RGBA", (width, height), noise).convert(mode)
    if fmt == "JPEG" and mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if fmt == "WEBP" and mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_png(width: int, height: int, payload: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(payload))
        + _png_chunk(b"IEND", b"")
    )


def _huge_gif(width: int, height: int, payload: bytes) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + b"\x02" + bytes([len(payload[:255])]) + payload[:255]


def _huge_bmp(width: int, height: int, payload: bytes) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(payload), 0, 0, 54) + info + payload


def _huge_tiff(width: int, height: int, payload: bytes) -> bytes:
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8 + 2 + 12 * 8 + 4),  # StripOffsets: just after the directory
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, len(payload)),  # StripByteCounts
    ]
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        directory += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + directory + b"\x00" * 4 + payload


def _huge_jpeg(width: int, height: int, payload: bytes) -> bytes:
    small = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(small, "JPEG")
    data = bytearray(small.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    return bytes(data) + payload


def _huge_webp(width: int, height: int, payload: bytes) -> bytes:
    canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    body = b"WEBP" + vp8x + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


HUGE: dict[str, Callable[[int, int, bytes], bytes]] = {
    "PNG": _huge_png,
    "GIF": _huge_gif,
    "BMP": _huge_bmp,
    "TIFF": _huge_tiff,
    "JPEG": _huge_jpeg,
    "WEBP": _huge_webp,
}
# Formats whose crafted header is well formed enough that the size is all that is wrong.
HUGE_IS_TOO_LARGE = ("PNG", "GIF", "BMP", "TIFF")


@st.composite
def huge_declared(draw: st.DrawFn) -> tuple[str, int, int, bytes]:
    fmt = draw(st.sampled_from(tuple(HUGE)))
    limit = 0xFFFF if fmt in ("GIF", "JPEG") else 0xFFFFFF if fmt == "WEBP" else 0x7FFFFFFF
    width = draw(st.integers(1100, limit))
    height = draw(st.integers(1100, limit))
    payload = draw(st.binary(max_size=256))
    return fmt, width, height, HUGE[fmt](width, height, payload)


def wire_forms(data: bytes) -> st.SearchStrategy[str | bytes]:
    text = base64.b64encode(data).decode("ascii")
    return st.sampled_from([data, text, f"data:image/png;base64,{text}"])


# ---- properties ------------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), image=encoded_images())
def test_valid_images_decode(data: st.DataObject, image: bytes) -> None:
    answer = judge(data.draw(wire_forms(image)))
    assert isinstance(answer, Image.Image)


@FUZZ
@given(image=encoded_images(), cut=st.floats(0, 1, exclude_max=True), mask=st.booleans())
def test_truncated_images_are_a_4xx(image: bytes, cut: float, mask: bool) -> None:
    judge(image[: int(len(image) * cut)], mask=mask)


@FUZZ
@given(
    image=encoded_images(),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    mask=st.booleans(),
)
def test_corrupted_images_are_a_4xx(image: bytes, flips: list[tuple[int, int]], mask: bool) -> None:
    corrupted = bytearray(image)
    for index, value in flips:
        corrupted[index % len(corrupted)] = value
    judge(bytes(corrupted), mask=mask)


@FUZZ
@given(sample=huge_declared(), data=st.data())
def test_huge_declared_sizes_are_refused_before_decoding(
    sample: tuple[str, int, int, bytes], data: st.DataObject
) -> None:
    fmt, _, _, raw = sample
    answer = judge(data.draw(wire_forms(raw)))
    assert isinstance(answer, EaselError)
    if fmt in HUGE_IS_TOO_LARGE:
        assert isinstance(answer, PayloadTooLarge), answer.message


@FUZZ
@given(
    magic=st.sampled_from(
        [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM"]
        + [b"RIFF\x00\x00\x00\x00WEBPVP8 "]
    ),
    tail=st.binary(max_size=2048),
)
def test_random_bytes_are_a_4xx(magic: bytes, tail: bytes) -> None:
    judge(magic + tail)


@FUZZ
@given(text=st.text(max_size=512))
def test_random_text_is_a_4xx(text: str) -> None:
    judge(text)


@pytest.mark.parametrize("fmt", HUGE_IS_TOO_LARGE)
def test_a_gigapixel_header_is_413_without_decoding(fmt: str) -> None:
    answer = judge(HUGE[fmt](60000, 60000, b"\x00" * 64))
    assert isinstance(answer, PayloadTooLarge)
