"""ImageCodec, the shared image codec: decoding, limits, errors, encoding."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from easel.core.errors import EaselError, InvalidInput, PayloadTooLarge
from easel.core.images import ImageCodec, OutputFormat, flatten
from tests.support.images import (
    b64,
    data_url,
    encode,
    exif_jpeg,
    noise_image,
    padded_png,
    pixels,
    scene,
)

MB = 1024 * 1024


@pytest.fixture()
def codec() -> ImageCodec:
    return ImageCodec(max_bytes=2 * MB, max_pixels=1_000_000)


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but carries no pixel data worth speaking of."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def assert_field_error(
    exc: EaselError, cls: type[EaselError], status: int, field: str
) -> list[dict[str, object]]:
    assert type(exc) is cls
    assert exc.status == status
    assert isinstance(exc.details, list) and exc.details, exc.details
    assert exc.details[0]["field"] == field
    assert field in exc.message
    return exc.details


# ---- decoding: the wire forms ---------------------------------------------------------------


def test_decode_base64_png_is_pixel_exact(codec: ImageCodec) -> None:
    image = noise_image(31, 17, "RGB", seed=3)
    decoded = codec.decode(b64(image), "image")
    assert decoded.mode == "RGB"
    assert decoded.size == (31, 17)
    assert np.array_equal(pixels(decoded), pixels(image))


def test_decode_data_url(codec: ImageCodec) -> None:
    image = noise_image(12, 9, "RGBA", seed=4)
    decoded = codec.decode(data_url(image), "image")
    assert decoded.mode == "RGBA"
    assert np.array_equal(pixels(decoded), pixels(image))


def test_decode_raw_bytes(codec: ImageCodec) -> None:
    image = noise_image(10, 11, "L", seed=5)
    decoded = codec.decode(encode(image), "image")
    assert decoded.mode == "L"
    assert np.array_equal(pixels(decoded), pixels(image))


def test_decode_tolerates_mime_line_breaks_and_surrounding_whitespace(codec: ImageCodec) -> None:
    image = noise_image(40, 40, "RGB", seed=6)
    text = b64(image)
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    decoded = codec.decode(f"  \r\n{wrapped}\r\n  ", "image")
    assert np.array_equal(pixels(decoded), pixels(image))


def test_decode_tolerates_spaces_and_tabs_inside(codec: ImageCodec) -> None:
    image = noise_image(8, 8, "RGB", seed=7)
    text = b64(image)
    spaced = " ".join(text[i : i + 10] for i in range(0, len(text), 10)).replace(" ", " \t", 3)
    assert np.array_equal(pixels(codec.decode(spaced, "image")), pixels(image))


def test_decode_tolerates_whitespace_after_the_first_kilobyte(codec: ImageCodec) -> None:
    # A single line break deep inside the text (e.g. a client wrapping at 4096 columns).
    image = noise_image(60, 60, "RGB", seed=8)
    text = b64(image)
    assert len(text) > 5000
    broken = text[:4096] + "\n" + text[4096:]
    assert np.array_equal(pixels(codec.decode(broken, "image")), pixels(image))


def test_decode_tolerates_missing_padding(codec: ImageCodec) -> None:
    for width in (5, 6, 7):  # different lengths give different amounts of padding
        image = noise_image(width, 3, "RGB", seed=width)
        text = b64(image)
        stripped = text.rstrip("=")
        assert np.array_equal(pixels(codec.decode(stripped, "image")), pixels(image))
        assert np.array_equal(pixels(codec.decode(stripped + "\n", "image")), pixels(image))


def test_decode_data_url_with_missing_padding_and_line_breaks(codec: ImageCodec) -> None:
    image = noise_image(20, 20, "RGB", seed=9)
    text = b64(image).rstrip("=")
    wrapped = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    decoded = codec.decode(f"data:image/png;base64,{wrapped}", "image")
    assert np.array_equal(pixels(decoded), pixels(image))


# ---- decoding: modes and orientation ------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "transpose"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_270),  # display = rotate 90 degrees clockwise
        (8, Image.Transpose.ROTATE_90),
    ],
)
def test_decode_applies_exif_orientation(
    codec: ImageCodec, orientation: int, transpose: Image.Transpose
) -> None:
    # Four solid quadrants: survive JPEG well and show any rotation.
    quadrants = np.zeros((40, 60, 3), np.uint8)
    quadrants[:20, :30] = (255, 0, 0)
    quadrants[:20, 30:] = (0, 255, 0)
    quadrants[20:, :30] = (0, 0, 255)
    quadrants[20:, 30:] = (255, 255, 0)
    source = Image.fromarray(quadrants, "RGB")
    decoded = codec.decode(exif_jpeg(source, orientation), "image")
    expected = pixels(source.transpose(transpose))
    assert decoded.size == (expected.shape[1], expected.shape[0])
    error = np.abs(pixels(decoded).astype(int) - expected.astype(int))
    assert error.mean() < 6, error.mean()


def test_decode_exif_orientation_6_swaps_width_and_height(codec: ImageCodec) -> None:
    decoded = codec.decode(base64.b64encode(exif_jpeg(scene(48, 24), 6)).decode(), "image")
    assert decoded.size == (24, 48)


@pytest.mark.parametrize(
    ("make", "fmt", "mode"),
    [
        (lambda: noise_image(16, 12, "RGB").convert("P"), "PNG", "RGB"),
        (lambda: noise_image(16, 12, "RGB").convert("P"), "GIF", "RGB"),
        (lambda: noise_image(16, 12, "RGB").convert("CMYK"), "JPEG", "RGB"),
        (lambda: noise_image(16, 12, "L").convert("1"), "PNG", "RGB"),
        (lambda: noise_image(16, 12, "RGBA").convert("LA"), "PNG", "RGBA"),
        (lambda: noise_image(16, 12, "RGB"), "BMP", "RGB"),
        (lambda: noise_image(16, 12, "RGBA"), "TIFF", "RGBA"),
        (lambda: noise_image(16, 12, "L"), "PNG", "L"),
    ],
)
def test_decode_normalises_modes(
    codec: ImageCodec, make: Callable[[], Image.Image], fmt: str, mode: str
) -> None:
    source = make()
    data = encode(source, fmt)
    decoded = codec.decode(data, "image")
    assert decoded.mode == mode
    expected = open_bytes(data).convert(mode)
    if fmt == "JPEG":
        assert np.abs(pixels(decoded).astype(int) - pixels(expected).astype(int)).max() <= 2
    else:
        assert np.array_equal(pixels(decoded), pixels(expected))


def test_decode_palette_with_transparency_keeps_alpha(codec: ImageCodec) -> None:
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    palette.paste(1, (4, 0, 8, 8))
    data = encode(palette, "PNG", transparency=0)
    decoded = codec.decode(data, "image")
    assert decoded.mode == "RGBA"
    array = pixels(decoded)
    assert (array[:, :4, 3] == 0).all()
    assert (array[:, 4:] == (0, 0, 255, 255)).all()


def test_decode_16_bit_grey_png_keeps_its_brightness(codec: ImageCodec) -> None:
    # Mid grey in 16 bits (32768 of 65535) must stay mid grey, not clip to white.
    grey16 = Image.fromarray(np.full((6, 6), 32768, np.uint16))
    decoded = codec.decode(encode(grey16, "PNG"), "image")
    values = pixels(decoded.convert("L"))
    assert 120 <= int(values.mean()) <= 135, values.mean()


# ---- decode_mask ------------------------------------------------------------------------


def test_decode_mask_of_rgba_with_varying_alpha_uses_alpha(codec: ImageCodec) -> None:
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere: luminance would select everything
    rgba[..., 3] = np.tile(np.linspace(0, 255, 20).astype(np.uint8), (10, 1))
    mask = codec.decode_mask(b64(Image.fromarray(rgba, "RGBA")), "mask")
    assert mask.mode == "L"
    assert np.array_equal(pixels(mask), rgba[..., 3])


def test_decode_mask_of_opaque_rgba_uses_luminance(codec: ImageCodec) -> None:
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[:, 3:, :3] = 255
    rgba[..., 3] = 255
    mask = codec.decode_mask(b64(Image.fromarray(rgba, "RGBA")), "mask")
    assert mask.mode == "L"
    expected = np.zeros((6, 6), np.uint8)
    expected[:, 3:] = 255
    assert np.array_equal(pixels(mask), expected)


def test_decode_mask_of_rgb_uses_luminance(codec: ImageCodec) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 255, 255)
    rgb[1, 1] = (255, 0, 0)
    mask = pixels(codec.decode_mask(b64(Image.fromarray(rgb, "RGB")), "mask"))
    assert mask[0, 0] == 255
    assert mask[1, 1] == round(0.299 * 255)  # ITU-R 601 luma of pure red
    assert mask[2, 2] == 0


def test_decode_mask_of_grey_is_unchanged(codec: ImageCodec) -> None:
    grey = noise_image(9, 7, "L", seed=11)
    assert np.array_equal(pixels(codec.decode_mask(b64(grey), "mask")), pixels(grey))


# ---- decoding errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        "iVBORw0KGgo$$$$",
        "data:image/png;base64,@@@@",
        "A",  # one char cannot be base64 of anything
    ],
)
def test_bad_base64_is_invalid_input_naming_the_field(codec: ImageCodec, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        codec.decode(text, "photo")
    assert_field_error(info.value, InvalidInput, 422, "photo")


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "data:image/png;base64,"])
def test_empty_image_is_invalid_input(codec: ImageCodec, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        codec.decode(text, "image")
    assert_field_error(info.value, InvalidInput, 422, "image")


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png," + "iVBORw0KGgo",  # not ;base64
        "data:image/png;charset=utf-8," + "iVBORw0KGgo",
        "data:image/png;base64",  # no comma at all
    ],
)
def test_data_url_must_be_base64(codec: ImageCodec, url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        codec.decode(url, "image")
    details = assert_field_error(info.value, InvalidInput, 422, "image")
    assert "base64" in str(details[0]["message"])


@pytest.mark.parametrize(
    "data", [b"hello, I am not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"\x00" * 100]
)
def test_not_an_image_is_invalid_input(codec: ImageCodec, data: bytes) -> None:
    for wire in (data, base64.b64encode(data).decode()):
        with pytest.raises(InvalidInput) as info:
            codec.decode(wire, "image_a")
        assert_field_error(info.value, InvalidInput, 422, "image_a")


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "PCX", "TGA", "SGI", "QOI"])
def test_formats_outside_the_allowed_list_are_refused(codec: ImageCodec, fmt: str) -> None:
    data = encode(noise_image(16, 16, "RGB"), fmt)
    assert open_bytes(data).format == fmt  # Pillow itself could read it
    with pytest.raises(InvalidInput) as info:
        codec.decode(data, "image")
    details = assert_field_error(info.value, InvalidInput, 422, "image")
    assert fmt in str(details[0]["message"])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_allowed_formats_decode(codec: ImageCodec, fmt: str) -> None:
    decoded = codec.decode(encode(scene(24, 16), fmt), "image")
    assert decoded.size == (24, 16)
    assert decoded.mode == "RGB"


def test_truncated_image_is_invalid_input(codec: ImageCodec) -> None:
    data = encode(noise_image(64, 64, "RGB"), "PNG")
    with pytest.raises(InvalidInput) as info:
        codec.decode(data[: len(data) // 2], "image")
    assert_field_error(info.value, InvalidInput, 422, "image")


def test_too_many_bytes_raw_is_payload_too_large() -> None:
    codec = ImageCodec(max_bytes=1000, max_pixels=10**6)
    data = padded_png(Image.new("RGB", (4, 4)), 1500)
    with pytest.raises(PayloadTooLarge) as info:
        codec.decode(data, "image")
    details = assert_field_error(info.value, PayloadTooLarge, 413, "image")
    assert details[0]["limit_bytes"] == 1000
    assert details[0]["bytes"] == len(data)


def test_too_many_bytes_base64_is_payload_too_large_before_decoding() -> None:
    codec = ImageCodec(max_bytes=1000, max_pixels=10**6)
    data = padded_png(Image.new("RGB", (4, 4)), 1500)
    text = base64.b64encode(data).decode()
    for wire in (text, "data:image/png;base64," + text):
        with pytest.raises(PayloadTooLarge) as info:
            codec.decode(wire, "mask")
        assert_field_error(info.value, PayloadTooLarge, 413, "mask")


def test_exactly_at_the_byte_limit_is_accepted() -> None:
    data = encode(noise_image(8, 8, "RGB"), "PNG")
    codec = ImageCodec(max_bytes=len(data), max_pixels=10**6)
    assert codec.decode(data, "image").size == (8, 8)
    assert codec.decode(base64.b64encode(data).decode(), "image").size == (8, 8)


def test_too_many_pixels_is_payload_too_large_with_size() -> None:
    codec = ImageCodec(max_bytes=MB, max_pixels=100)
    with pytest.raises(PayloadTooLarge) as info:
        codec.decode(b64(Image.new("RGB", (11, 10))), "image")
    details = assert_field_error(info.value, PayloadTooLarge, 413, "image")
    assert (details[0]["width"], details[0]["height"]) == (11, 10)
    # exactly at the limit is fine
    assert codec.decode(b64(Image.new("RGB", (10, 10))), "image").size == (10, 10)


def test_pixel_limit_is_checked_from_the_header() -> None:
    # The header declares 7000x7000 but there is no pixel data: it must be refused for its size,
    # not for being corrupt, which proves no decoding was attempted.
    codec = ImageCodec(max_bytes=MB, max_pixels=40_000_000)
    with pytest.raises(PayloadTooLarge) as info:
        codec.decode(png_header_only(7000, 7000), "image")
    assert_field_error(info.value, PayloadTooLarge, 413, "image")


def test_pillows_own_bomb_limit_becomes_payload_too_large() -> None:
    codec = ImageCodec(max_bytes=MB, max_pixels=10**12)
    with pytest.raises(PayloadTooLarge) as info:
        codec.decode(png_header_only(20000, 20000), "image_b")
    assert_field_error(info.value, PayloadTooLarge, 413, "image_b")


def test_decode_mask_errors_name_the_field(codec: ImageCodec) -> None:
    with pytest.raises(InvalidInput) as info:
        codec.decode_mask("%%%", "mask")
    assert_field_error(info.value, InvalidInput, 422, "mask")


# ---- encoding ---------------------------------------------------------------------------


def test_output_format_media_types() -> None:
    assert [f.media_type for f in OutputFormat] == ["image/png", "image/jpeg", "image/webp"]
    assert OutputFormat("jpeg") is OutputFormat.JPEG


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_encode_png_round_trips_exactly(codec: ImageCodec, mode: str) -> None:
    image = noise_image(21, 13, mode, seed=2)
    out = open_bytes(codec.encode(image, OutputFormat.PNG))
    assert out.format == "PNG"
    assert out.mode == mode
    assert np.array_equal(pixels(out), pixels(image))


def test_encode_rgba_to_jpeg_flattens_onto_white(codec: ImageCodec) -> None:
    rgba = np.zeros((16, 32, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[:, 16:] = (0, 0, 255, 255)  # opaque blue -> blue
    out = open_bytes(codec.encode(Image.fromarray(rgba, "RGBA"), OutputFormat.JPEG))
    assert out.format == "JPEG"
    assert out.mode == "RGB"
    array = pixels(out).astype(int)
    assert np.abs(array[2:-2, 2:12] - 255).max() <= 8
    assert np.abs(array[2:-2, 20:-2] - (0, 0, 255)).max() <= 8


def test_encode_half_transparent_to_jpeg_blends_with_white(codec: ImageCodec) -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:] = (0, 0, 0, 128)
    out = pixels(open_bytes(codec.encode(Image.fromarray(rgba, "RGBA"), OutputFormat.JPEG)))
    assert np.abs(out.astype(int) - 127).max() <= 4


def test_encode_grey_to_jpeg_stays_grey(codec: ImageCodec) -> None:
    out = open_bytes(codec.encode(Image.new("L", (8, 8), 77), OutputFormat.JPEG))
    assert out.mode == "L"
    assert np.abs(pixels(out).astype(int) - 77).max() <= 2


def test_encode_webp_keeps_alpha(codec: ImageCodec) -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, 8:, 3] = 255
    out = open_bytes(codec.encode(Image.fromarray(rgba, "RGBA"), OutputFormat.WEBP))
    assert out.format == "WEBP"
    assert out.mode == "RGBA"
    assert np.array_equal(pixels(out)[..., 3], rgba[..., 3])


@pytest.mark.parametrize("fmt", [OutputFormat.JPEG, OutputFormat.WEBP])
def test_encode_quality_default_and_ordering(fmt: OutputFormat) -> None:
    codec = ImageCodec(max_bytes=MB, max_pixels=10**6, default_quality=60)
    image = noise_image(64, 64, "RGB", seed=12)
    assert codec.encode(image, fmt) == codec.encode(image, fmt, 60)
    low, high = codec.encode(image, fmt, 10), codec.encode(image, fmt, 95)
    assert len(low) < len(codec.encode(image, fmt)) < len(high)


def test_encode_png_compress_level_is_used() -> None:
    image = scene(128, 96)
    fast = ImageCodec(max_bytes=MB, max_pixels=10**6, png_compress_level=0).encode(
        image, OutputFormat.PNG
    )
    small = ImageCodec(max_bytes=MB, max_pixels=10**6, png_compress_level=9).encode(
        image, OutputFormat.PNG
    )
    assert len(fast) > 128 * 96 * 3  # stored, not deflated
    assert len(small) < len(fast) // 4
    assert np.array_equal(pixels(open_bytes(fast)), pixels(open_bytes(small)))


def test_encode_base64_is_base64_of_encode(codec: ImageCodec) -> None:
    image = noise_image(7, 5, "RGB")
    text = codec.encode_base64(image, OutputFormat.PNG)
    assert base64.b64decode(text, validate=True) == codec.encode(image, OutputFormat.PNG)


def test_decode_of_encode_round_trips(codec: ImageCodec) -> None:
    image = noise_image(19, 23, "RGBA", seed=13)
    text = codec.encode_base64(image, OutputFormat.PNG)
    assert np.array_equal(pixels(codec.decode(text, "image")), pixels(image))


# ---- flatten ----------------------------------------------------------------------------


def test_flatten_composites_onto_white() -> None:
    rgba = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [200, 100, 0, 128]]], np.uint8)
    out = pixels(flatten(Image.fromarray(rgba, "RGBA"))).astype(int)
    assert out.shape == (1, 3, 3)
    assert (out[0, 0] == 255).all()
    assert (out[0, 1] == 0).all()
    expected = np.array([200, 100, 0]) * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(out[0, 2] - expected).max() <= 1


def test_flatten_of_la_and_rgb() -> None:
    la = Image.fromarray(np.array([[[10, 0], [10, 255]]], np.uint8), "LA")
    out = pixels(flatten(la))
    assert out.tolist() == [[[255, 255, 255], [10, 10, 10]]]
    rgb = noise_image(3, 3, "RGB")
    assert np.array_equal(pixels(flatten(rgb)), pixels(rgb))


def _tiff_with_text_strip_offsets() -> bytes:
    """A 1x1 TIFF whose StripOffsets tag says ASCII: Pillow's `load()` raises TypeError
    on it (the codec fuzz test found it)."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * index
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<HHI4s", data, entry, 273, 2, 4, b"1234")
    return bytes(data)


def test_a_tiff_that_pillow_fails_on_with_a_type_error_is_a_422(codec: ImageCodec) -> None:
    with pytest.raises(InvalidInput) as caught:
        codec.decode(_tiff_with_text_strip_offsets(), "image")
    assert caught.value.details[0]["field"] == "image"
    assert "corrupt" in caught.value.message
