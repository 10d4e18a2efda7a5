"""Every image-utils op through the gateway, checked against references computed here.

References use Pillow, NumPy and OpenCV directly, never easel code. Each test runs on both
topologies (the `api` fixture is parametrized).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from tests.support.images import (
    dilate_reference,
    disk_mask,
    encode,
    erode_reference,
    exif_jpeg,
    noise_image,
    pixels,
    request_kwargs,
    ring_mask,
    scene,
)

VIAS = ("base64", "data_url", "multipart")
RESULT_KEYS = {"image", "format", "media_type", "width", "height"}
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


# ---- sending requests three ways ------------------------------------------------------------


def call(api: httpx.Client, op: str, fields: dict[str, Any], via: str = "base64") -> httpx.Response:
    """POST an op; image fields (PIL images or encoded bytes) go as base64, data URL or files."""
    return api.post(f"/api/image-utils/{op}", **request_kwargs(fields, via))  # type: ignore[arg-type]


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def result_image(result: dict[str, Any], fmt: str = "png") -> Image.Image:
    """Check an ImageResult's fields and return its decoded image."""
    assert set(result) == RESULT_KEYS, result.keys()
    assert result["format"] == fmt
    assert result["media_type"] == f"image/{fmt}"
    data = base64.b64decode(result["image"], validate=True)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == PIL_FORMAT[fmt]
    assert image.size == (result["width"], result["height"])
    return image


def run_image_op(
    api: httpx.Client, op: str, fields: dict[str, Any], via: str = "base64", fmt: str = "png"
) -> Image.Image:
    return result_image(ok(call(api, op, fields, via)), fmt)


def mean_error(a: NDArray[Any], b: NDArray[Any]) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def reencoded(image: Image.Image, fmt: str, **params: object) -> NDArray[np.uint8]:
    out = Image.open(io.BytesIO(encode(image, fmt, **params)))
    out.load()
    return pixels(out)


# ---- resize ---------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_resize_stretch_matches_pillow(api: httpx.Client, via: str) -> None:
    image = scene(96, 64)
    fields = {"image": image, "width": 50, "height": 30, "fit": "stretch", "resample": "bilinear"}
    out = run_image_op(api, "resize", fields, via)
    assert out.size == (50, 30)
    assert out.mode == "RGB"
    expected = image.resize((50, 30), Image.Resampling.BILINEAR)
    assert np.array_equal(pixels(out), pixels(expected))


@pytest.mark.parametrize("resample", sorted(FILTERS))
def test_resize_each_filter_matches_pillow(api: httpx.Client, resample: str) -> None:
    image = noise_image(40, 30, "RGB", seed=5)
    fields = {"image": image, "width": 23, "height": 57, "fit": "stretch", "resample": resample}
    out = run_image_op(api, "resize", fields)
    assert np.array_equal(pixels(out), pixels(image.resize((23, 57), FILTERS[resample])))


def test_resize_filters_differ(api: httpx.Client) -> None:
    # The filter is really passed on: nearest and lanczos give different pixels.
    image = noise_image(40, 30, "RGB", seed=6)
    results = [
        pixels(run_image_op(api, "resize", {"image": image, "scale": 0.7, "resample": name}))
        for name in ("nearest", "lanczos")
    ]
    assert not np.array_equal(*results)


@pytest.mark.parametrize(
    ("box", "expected_size"),
    [
        ({"width": 48, "height": 48}, (48, 32)),  # 96x64 into 48x48: width limits
        ({"width": 30, "height": 50}, (30, 20)),
        ({"width": 200, "height": 100}, (150, 100)),  # upscale: height limits
        ({"width": 24}, (24, 16)),  # one side: keep aspect
        ({"height": 16}, (24, 16)),
    ],
)
def test_resize_contain_keeps_aspect(
    api: httpx.Client, box: dict[str, int], expected_size: tuple[int, int]
) -> None:
    image = scene(96, 64)
    out = run_image_op(api, "resize", {"image": image, **box})  # fit defaults to contain
    assert out.size == expected_size
    expected = image.resize(expected_size, Image.Resampling.LANCZOS)
    assert np.array_equal(pixels(out), pixels(expected))


@pytest.mark.parametrize(
    ("size", "scaled", "crop_box"),
    [
        ((40, 40), (60, 40), (10, 0, 50, 40)),  # 96x64 -> scale 0.625, crop the sides
        ((30, 50), (75, 50), (22, 0, 52, 50)),  # scale 0.78125
        ((96, 20), (96, 64), (0, 22, 96, 42)),  # same width: crop top and bottom
    ],
)
def test_resize_cover_fills_and_centre_crops(
    api: httpx.Client,
    size: tuple[int, int],
    scaled: tuple[int, int],
    crop_box: tuple[int, int, int, int],
) -> None:
    image = scene(96, 64)
    fields = {"image": image, "width": size[0], "height": size[1], "fit": "cover"}
    fields["resample"] = "bicubic"
    out = run_image_op(api, "resize", fields)
    assert out.size == size
    expected = image.resize(scaled, Image.Resampling.BICUBIC).crop(crop_box)
    assert np.array_equal(pixels(out), pixels(expected))


@pytest.mark.parametrize(("scale", "expected_size"), [(0.25, (24, 16)), (1.5, (144, 96))])
def test_resize_by_scale(api: httpx.Client, scale: float, expected_size: tuple[int, int]) -> None:
    image = scene(96, 64)
    fields = {"image": image, "scale": scale, "resample": "bilinear"}
    out = run_image_op(api, "resize", fields)
    assert out.size == expected_size
    expected = image.resize(expected_size, Image.Resampling.BILINEAR)
    assert np.array_equal(pixels(out), pixels(expected))


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_resize_keeps_alpha(api: httpx.Client, fmt: str) -> None:
    image = noise_image(20, 16, "RGBA", seed=7)
    fields = {"image": image, "scale": 2, "resample": "nearest", "output_format": fmt}
    out = run_image_op(api, "resize", fields, fmt=fmt)
    assert out.mode == "RGBA"
    expected = pixels(image.resize((40, 32), Image.Resampling.NEAREST))
    assert np.array_equal(pixels(out)[..., 3], expected[..., 3])
    if fmt == "png":
        assert np.array_equal(pixels(out), expected)


def test_resize_grey_stays_grey(api: httpx.Client) -> None:
    image = noise_image(30, 20, "L", seed=8)
    out = run_image_op(api, "resize", {"image": image, "width": 15, "resample": "bilinear"})
    assert out.mode == "L"
    expected = image.resize((15, 10), Image.Resampling.BILINEAR)
    assert np.array_equal(pixels(out), pixels(expected))


# ---- crop -----------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_crop_matches_numpy_slicing(api: httpx.Client, via: str) -> None:
    image = noise_image(96, 64, "RGB", seed=9)
    out = run_image_op(
        api, "crop", {"image": image, "x": 10, "y": 5, "width": 30, "height": 20}, via
    )
    assert out.size == (30, 20)
    assert np.array_equal(pixels(out), pixels(image)[5:25, 10:40])


@pytest.mark.parametrize(
    "box",
    [
        {"x": 0, "y": 0, "width": 50, "height": 40},  # the whole image
        {"x": 49, "y": 39, "width": 1, "height": 1},  # the last pixel
        {"x": 0, "y": 39, "width": 50, "height": 1},  # the last row
        {"x": 49, "y": 0, "width": 1, "height": 40},  # the last column
    ],
)
def test_crop_at_the_edges(api: httpx.Client, box: dict[str, int]) -> None:
    image = noise_image(50, 40, "RGB", seed=10)
    out = run_image_op(api, "crop", {"image": image, **box})
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    assert np.array_equal(pixels(out), pixels(image)[y : y + h, x : x + w])


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_crop_keeps_alpha(api: httpx.Client, fmt: str) -> None:
    image = noise_image(40, 30, "RGBA", seed=11)
    fields = {"image": image, "x": 3, "y": 4, "width": 20, "height": 10, "output_format": fmt}
    out = run_image_op(api, "crop", fields, fmt=fmt)
    assert out.mode == "RGBA"
    expected = pixels(image)[4:14, 3:23]
    assert np.array_equal(pixels(out)[..., 3], expected[..., 3])
    if fmt == "png":
        assert np.array_equal(pixels(out), expected)


def test_crop_to_jpeg_is_close_to_pillows_jpeg(api: httpx.Client) -> None:
    image = scene(96, 64)
    fields = {"image": image, "x": 8, "y": 8, "width": 64, "height": 48}
    fields |= {"output_format": "jpeg", "quality": 80}
    out = run_image_op(api, "crop", fields, fmt="jpeg")
    expected = reencoded(image.crop((8, 8, 72, 56)), "JPEG", quality=80)
    assert mean_error(pixels(out), expected) < 0.5


# ---- convert --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
@pytest.mark.parametrize("via", VIAS)
def test_convert_to_png_round_trips_exactly(api: httpx.Client, via: str, mode: str) -> None:
    image = noise_image(33, 21, mode, seed=12)
    out = run_image_op(api, "convert", {"image": image, "output_format": "png"}, via)
    assert out.mode == mode
    assert np.array_equal(pixels(out), pixels(image))


@pytest.mark.parametrize(("fmt", "pil"), [("jpeg", "JPEG"), ("webp", "WEBP")])
@pytest.mark.parametrize("quality", [30, 85])
def test_convert_lossy_is_close_to_pillows_encoding(
    api: httpx.Client, fmt: str, pil: str, quality: int
) -> None:
    image = scene(96, 64)
    fields = {"image": image, "output_format": fmt, "quality": quality}
    out = run_image_op(api, "convert", fields, fmt=fmt)
    assert out.mode == "RGB"
    assert out.size == (96, 64)
    reference = reencoded(image, pil, quality=quality)
    assert mean_error(pixels(out), reference) < 0.5
    assert mean_error(pixels(out), pixels(image)) < (12 if quality < 50 else 5)


def test_convert_jpeg_flattens_alpha_onto_white(api: httpx.Client) -> None:
    rgba = np.zeros((32, 48, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 0)  # transparent red: becomes white
    rgba[:, 16:32] = (0, 0, 0, 128)  # half transparent black: mid grey
    rgba[:, 32:] = (0, 0, 255, 255)  # opaque blue stays blue
    out = run_image_op(
        api,
        "convert",
        {"image": Image.fromarray(rgba, "RGBA"), "output_format": "jpeg"},
        fmt="jpeg",
    )
    assert out.mode == "RGB"
    array = pixels(out).astype(int)
    assert np.abs(array[4:-4, 2:12] - 255).max() <= 8
    assert np.abs(array[4:-4, 20:28] - 127).max() <= 8
    assert np.abs(array[4:-4, 36:-2] - (0, 0, 255)).max() <= 8


def test_convert_webp_keeps_alpha(api: httpx.Client) -> None:
    image = noise_image(24, 24, "RGBA", seed=13)
    out = run_image_op(api, "convert", {"image": image, "output_format": "webp"}, fmt="webp")
    assert out.mode == "RGBA"
    assert np.array_equal(pixels(out)[..., 3], pixels(image)[..., 3])


def test_convert_accepts_format_as_alias(api: httpx.Client) -> None:
    out = run_image_op(api, "convert", {"image": scene(), "format": "webp"}, fmt="webp")
    assert out.size == (96, 64)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_higher_quality_gives_more_bytes(api: httpx.Client, fmt: str, via: str) -> None:
    image = noise_image(64, 64, "RGB", seed=14)
    sizes = []
    for quality in (10, 50, 95):
        fields = {"image": image, "output_format": fmt, "quality": quality}
        result = ok(call(api, "convert", fields, via))
        result_image(result, fmt)
        sizes.append(len(base64.b64decode(result["image"])))
    assert sizes[0] < sizes[1] < sizes[2], sizes


def test_default_quality_is_the_servers(api: httpx.Client) -> None:
    # The server default is 90: same bytes as asking for 90 explicitly, and not 50's.
    image = noise_image(48, 48, "RGB", seed=15)
    default = ok(call(api, "convert", {"image": image, "output_format": "jpeg"}))["image"]
    ninety = ok(call(api, "convert", {"image": image, "output_format": "jpeg", "quality": 90}))
    fifty = ok(call(api, "convert", {"image": image, "output_format": "jpeg", "quality": 50}))
    assert default == ninety["image"]
    assert default != fifty["image"]


@pytest.mark.parametrize(
    ("fmt", "params", "expected_mode"),
    [
        ("GIF", {}, "RGB"),
        ("BMP", {}, "RGB"),
        ("TIFF", {}, "RGB"),
        ("WEBP", {"lossless": True}, "RGB"),
        ("JPEG", {"quality": 95}, "RGB"),
    ],
)
@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_accepted_input_formats(
    api: httpx.Client, fmt: str, params: dict[str, object], expected_mode: str, via: str
) -> None:
    data = encode(scene(40, 30), fmt, **params)
    out = run_image_op(api, "convert", {"image": data, "output_format": "png"}, via)
    source = Image.open(io.BytesIO(data))
    source.load()
    expected = pixels(source.convert(expected_mode))
    assert out.mode == expected_mode
    if fmt == "JPEG":
        assert mean_error(pixels(out), expected) < 1
    else:
        assert np.array_equal(pixels(out), expected)


@pytest.mark.parametrize("via", ["base64", "data_url", "multipart"])
def test_exif_orientation_is_applied(api: httpx.Client, via: str) -> None:
    # Left half red, right half blue, 60x30; orientation 6 shows it turned 90 degrees clockwise:
    # 30x60 with red on top.
    array = np.zeros((30, 60, 3), np.uint8)
    array[:, :30] = (255, 0, 0)
    array[:, 30:] = (0, 0, 255)
    data = exif_jpeg(Image.fromarray(array, "RGB"), orientation=6)
    out = run_image_op(api, "convert", {"image": data, "output_format": "png"}, via)
    assert out.size == (30, 60)
    top, bottom = pixels(out)[5:25].astype(int), pixels(out)[35:55].astype(int)
    assert np.abs(top - (255, 0, 0)).max() <= 10
    assert np.abs(bottom - (0, 0, 255)).max() <= 10


def test_exif_orientation_applies_before_crop(api: httpx.Client) -> None:
    data = exif_jpeg(scene(60, 30), orientation=6)
    # (x=0, y=40, 30x20) exists only in the rotated 30x60 image
    fields = {"image": data, "x": 0, "y": 40, "width": 30, "height": 20}
    assert run_image_op(api, "crop", fields).size == (30, 20)


# ---- extract-object --------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_extract_object_alpha_is_the_mask(api: httpx.Client, via: str) -> None:
    image = scene(96, 64)
    mask = disk_mask(96, 64, 40, 30, 18)
    mask[0:5, 0:5] = 128  # a partial selection is partial alpha
    out = run_image_op(api, "extract-object", {"image": image, "mask": Image.fromarray(mask)}, via)
    assert out.mode == "RGBA"
    assert out.size == (96, 64)
    assert np.array_equal(pixels(out)[..., 3], mask)
    assert np.array_equal(pixels(out)[..., :3], pixels(image))


def test_extract_object_multiplies_existing_alpha(api: httpx.Client) -> None:
    rgba = pixels(noise_image(50, 40, "RGBA", seed=16)).copy()
    mask = np.tile(np.linspace(0, 255, 50).astype(np.uint8), (40, 1))
    fields = {"image": Image.fromarray(rgba, "RGBA"), "mask": Image.fromarray(mask, "L")}
    out = pixels(run_image_op(api, "extract-object", fields))
    expected = rgba[..., 3].astype(float) * mask.astype(float) / 255
    assert np.abs(out[..., 3].astype(float) - expected).max() <= 1
    assert np.array_equal(out[..., :3], rgba[..., :3])


def test_extract_object_mask_from_rgb_uses_luminance(api: httpx.Client) -> None:
    image = scene(40, 30)
    mask_rgb = np.zeros((30, 40, 3), np.uint8)
    mask_rgb[10:20, 10:30] = (255, 255, 255)
    fields = {"image": image, "mask": Image.fromarray(mask_rgb, "RGB")}
    out = pixels(run_image_op(api, "extract-object", fields))
    assert np.array_equal(out[..., 3], mask_rgb[..., 0])


def test_extract_object_mask_as_cutout_uses_its_alpha(api: httpx.Client) -> None:
    image = scene(40, 30)
    cutout = np.zeros((30, 40, 4), np.uint8)
    cutout[..., :3] = 255  # white everywhere; only alpha tells the selection
    cutout[5:25, 8:20, 3] = 255
    cutout[5:25, 20:24, 3] = 100
    fields = {"image": image, "mask": Image.fromarray(cutout, "RGBA")}
    out = pixels(run_image_op(api, "extract-object", fields))
    assert np.array_equal(out[..., 3], cutout[..., 3])


@pytest.mark.parametrize("via", ["base64", "multipart"])
@pytest.mark.parametrize(
    ("rect", "padding", "box"),
    [
        ((20, 10, 40, 30), 0, (20, 10, 40, 30)),
        ((20, 10, 40, 30), 5, (15, 5, 45, 35)),
        ((2, 3, 12, 13), 10, (0, 0, 22, 23)),  # clamped at the top-left
        ((80, 50, 96, 64), 4, (76, 46, 96, 64)),  # clamped at the bottom-right
    ],
)
def test_extract_object_crop_to_bbox_with_padding(
    api: httpx.Client,
    via: str,
    rect: tuple[int, int, int, int],
    padding: int,
    box: tuple[int, int, int, int],
) -> None:
    image = noise_image(96, 64, "RGB", seed=17)
    mask = np.zeros((64, 96), np.uint8)
    x1, y1, x2, y2 = rect
    mask[y1:y2, x1:x2] = 255
    fields = {"image": image, "mask": Image.fromarray(mask), "crop": True, "padding": padding}
    out = pixels(run_image_op(api, "extract-object", fields, via))
    bx1, by1, bx2, by2 = box
    assert out.shape == (by2 - by1, bx2 - bx1, 4)
    assert np.array_equal(out[..., :3], pixels(image)[by1:by2, bx1:bx2])
    assert np.array_equal(out[..., 3], mask[by1:by2, bx1:bx2])


def test_extract_object_to_webp_keeps_alpha(api: httpx.Client) -> None:
    mask = disk_mask(48, 32, 24, 16, 10)
    fields = {"image": scene(48, 32), "mask": Image.fromarray(mask), "output_format": "webp"}
    out = run_image_op(api, "extract-object", fields, fmt="webp")
    assert out.mode == "RGBA"
    assert np.array_equal(pixels(out)[..., 3], mask)


# ---- diff -----------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_diff_metrics_match_numpy(api: httpx.Client, via: str) -> None:
    a = noise_image(40, 30, "RGB", seed=18)
    b_array = pixels(a).copy()
    rng = np.random.default_rng(19)
    b_array[5:15, 10:30] = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)
    b = Image.fromarray(b_array, "RGB")
    result = ok(call(api, "diff", {"image_a": a, "image_b": b}, via))
    assert set(result) == {"mae", "mae_normalized", "max_error", "changed_fraction", "heatmap"}
    absolute = np.abs(pixels(a).astype(int) - b_array.astype(int))
    assert result["mae"] == pytest.approx(absolute.mean(), abs=1e-9)
    assert result["mae_normalized"] == pytest.approx(absolute.mean() / 255, abs=1e-9)
    assert result["max_error"] == absolute.max()
    assert result["changed_fraction"] == pytest.approx((absolute.sum(axis=2) > 0).mean())
    assert 0 < result["changed_fraction"] <= 200 / 1200
    heatmap = result_image(result["heatmap"])
    assert heatmap.size == (40, 30)
    assert heatmap.mode == "RGB"


def test_diff_of_identical_images_is_zero_with_a_uniform_heatmap(api: httpx.Client) -> None:
    a = scene(48, 32)
    result = ok(call(api, "diff", {"image_a": a, "image_b": a}))
    assert result["mae"] == 0
    assert result["mae_normalized"] == 0
    assert result["max_error"] == 0
    assert result["changed_fraction"] == 0
    heat = pixels(result_image(result["heatmap"]))
    assert (heat == heat[0, 0]).all()
    red, green, blue = (int(v) for v in heat[0, 0])
    assert blue > 100 and red < 30 and green < 30  # zero difference is blue


def test_diff_heatmap_is_hot_where_images_differ(api: httpx.Client) -> None:
    a = np.zeros((30, 40, 3), np.uint8)
    b = a.copy()
    b[10:20, 15:25] = 255
    result = ok(call(api, "diff", {"image_a": Image.fromarray(a), "image_b": Image.fromarray(b)}))
    assert result["max_error"] == 255
    assert result["mae"] == pytest.approx(255 * 100 / 1200)
    assert result["changed_fraction"] == pytest.approx(100 / 1200)
    heat = pixels(result_image(result["heatmap"])).astype(int)
    cold, hot = heat[0, 0], heat[15, 20]
    assert (heat[10:20, 15:25] == hot).all()
    outside = np.ones((30, 40), bool)
    outside[10:20, 15:25] = False
    assert (heat[outside] == cold).all()
    assert hot[0] > 100 and hot[1] < 30 and hot[2] < 30  # full difference is red
    assert cold[2] > 100 and cold[0] < 30


def test_diff_heatmap_follows_per_pixel_error(api: httpx.Client) -> None:
    # A horizontal ramp of differences: the heat-map must change monotonically along JET,
    # blue (small) to red (large): the red channel rises from left to right.
    a = np.zeros((10, 256, 3), np.uint8)
    b = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (10, 1, 3))
    result = ok(call(api, "diff", {"image_a": Image.fromarray(a), "image_b": Image.fromarray(b)}))
    assert result["mae"] == pytest.approx(127.5)
    assert result["changed_fraction"] == pytest.approx(255 / 256)
    heat = pixels(result_image(result["heatmap"])).astype(int)
    expected = cv2.cvtColor(
        cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None, :], cv2.COLORMAP_JET),
        cv2.COLOR_BGR2RGB,
    )[0]
    assert np.array_equal(heat[5], expected)


def test_diff_compares_in_rgb_across_modes(api: httpx.Client) -> None:
    # An RGB image against its grey conversion: compared in RGB.
    a = scene(32, 24)
    grey = a.convert("L")
    result = ok(call(api, "diff", {"image_a": a, "image_b": grey}))
    expected = np.abs(pixels(a).astype(int) - pixels(grey.convert("RGB")).astype(int))
    assert result["mae"] == pytest.approx(expected.mean())
    assert result["max_error"] == expected.max()


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_diff_heatmap_format(api: httpx.Client, fmt: str) -> None:
    fields = {"image_a": scene(32, 24), "image_b": scene(32, 24, seed=4), "output_format": fmt}
    result = ok(call(api, "diff", fields))
    assert result_image(result["heatmap"], fmt).size == (32, 24)


# ---- canny ----------------------------------------------------------------------------------


def canny_reference(image: Image.Image, params: dict[str, Any]) -> NDArray[np.uint8]:
    grey = pixels(image.convert("L"))
    edges: NDArray[np.uint8] = cv2.Canny(
        grey,
        params.get("low_threshold", 100),
        params.get("high_threshold", 200),
        apertureSize=params.get("aperture_size", 3),
        L2gradient=params.get("l2_gradient", False),
    )
    assert edges.any()
    return edges


def noisy_scene() -> Image.Image:
    return Image.blend(scene(96, 64, seed=3), noise_image(96, 64, "RGB", seed=20), 0.15)


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(
    "params",
    [{}, {"low_threshold": 20, "high_threshold": 60, "l2_gradient": True}],
)
def test_canny_matches_opencv(api: httpx.Client, via: str, params: dict[str, Any]) -> None:
    image = noisy_scene()
    out = run_image_op(api, "canny", {"image": image, **params}, via)
    assert out.mode == "L"
    assert np.array_equal(pixels(out), canny_reference(image, params))


@pytest.mark.parametrize(
    "params",
    [
        {"low_threshold": 50, "high_threshold": 150, "aperture_size": 5, "l2_gradient": True},
        {"low_threshold": 300, "high_threshold": 600, "aperture_size": 7},
        {"low_threshold": 80, "high_threshold": 80, "aperture_size": 3},
    ],
)
def test_canny_aperture_and_gradient_match_opencv(
    api: httpx.Client, params: dict[str, Any]
) -> None:
    image = noisy_scene()
    out = run_image_op(api, "canny", {"image": image, **params})
    assert np.array_equal(pixels(out), canny_reference(image, params))


def test_canny_aperture_size_as_a_form_field(api: httpx.Client) -> None:
    # In a multipart form every value is a string; "5" must be accepted like 5 in JSON.
    image = noisy_scene()
    params = {"low_threshold": 50, "high_threshold": 150, "aperture_size": 5}
    out = run_image_op(api, "canny", {"image": image, **params}, "multipart")
    assert np.array_equal(pixels(out), canny_reference(image, params))


def test_canny_edges_of_a_rectangle_lie_on_its_border(api: httpx.Client) -> None:
    array = np.zeros((60, 80), np.uint8)
    x0, y0, x1, y1 = 20, 15, 60, 45  # filled [y0, y1) x [x0, x1)
    array[y0:y1, x0:x1] = 255
    out = pixels(run_image_op(api, "canny", {"image": Image.fromarray(array, "L")}))
    assert set(np.unique(out).tolist()) == {0, 255}
    ys, xs = np.nonzero(out)
    near_vertical = (np.minimum(np.abs(xs - x0), np.abs(xs - (x1 - 1))) <= 1) & (
        (ys >= y0 - 1) & (ys <= y1)
    )
    near_horizontal = (np.minimum(np.abs(ys - y0), np.abs(ys - (y1 - 1))) <= 1) & (
        (xs >= x0 - 1) & (xs <= x1)
    )
    assert (near_vertical | near_horizontal).all()  # every edge pixel is on the border
    perimeter = 2 * ((x1 - x0) + (y1 - y0))
    assert len(xs) >= 0.9 * perimeter  # and the border is (nearly) all there
    for y in (y0 + 5, (y0 + y1) // 2, y1 - 5):  # each side is found
        assert out[y, x0 - 1 : x0 + 1].any() and out[y, x1 - 1 : x1 + 1].any()


def test_canny_of_a_flat_image_is_empty(api: httpx.Client) -> None:
    out = pixels(run_image_op(api, "canny", {"image": Image.new("RGB", (30, 20), (90, 10, 200))}))
    assert out.shape == (20, 30)
    assert not out.any()


# ---- mask -----------------------------------------------------------------------------------


def gradient_mask(width: int = 64, height: int = 8) -> NDArray[np.uint8]:
    return np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (height, 1))


@pytest.mark.parametrize("via", VIAS)
def test_mask_threshold(api: httpx.Client, via: str) -> None:
    mask = gradient_mask()
    out = run_image_op(api, "mask", {"mask": Image.fromarray(mask), "threshold": 128}, via)
    assert out.mode == "L"
    assert np.array_equal(pixels(out), np.where(mask >= 128, 255, 0))


@pytest.mark.parametrize("via", VIAS)
def test_mask_invert(api: httpx.Client, via: str) -> None:
    mask = gradient_mask()
    out = run_image_op(api, "mask", {"mask": Image.fromarray(mask), "invert": True}, via)
    assert np.array_equal(pixels(out), 255 - mask)


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("radius", [1, 3, 6])
def test_mask_dilate_matches_reference(api: httpx.Client, via: str, radius: int) -> None:
    mask = disk_mask(64, 48, 30, 24, 9)
    mask[5, 5] = 255  # a single pixel grows into the disk element itself
    out = pixels(run_image_op(api, "mask", {"mask": Image.fromarray(mask), "dilate": radius}, via))
    assert np.array_equal(out, dilate_reference(mask, radius))
    assert out.sum() > mask.sum()


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("radius", [1, 3, 6])
def test_mask_erode_matches_reference(api: httpx.Client, via: str, radius: int) -> None:
    mask = disk_mask(80, 60, 40, 30, 18)
    mask[29:31, 39:42] = 0  # an interior hole grows
    out = pixels(run_image_op(api, "mask", {"mask": Image.fromarray(mask), "erode": radius}, via))
    assert np.array_equal(out, erode_reference(mask, radius))
    assert 0 < out.sum() < mask.sum()


def test_mask_dilate_then_erode(api: httpx.Client) -> None:
    mask = np.zeros((30, 40), np.uint8)
    mask[10:20, 5:18] = 255
    mask[10:20, 20:33] = 255
    out = pixels(
        run_image_op(api, "mask", {"mask": Image.fromarray(mask), "dilate": 2, "erode": 2})
    )
    assert np.array_equal(out, erode_reference(dilate_reference(mask, 2), 2))
    assert (out[12:18, 18:20] == 255).all()


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_mask_feather_blurs_the_edge(api: httpx.Client, via: str) -> None:
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 255
    out = pixels(run_image_op(api, "mask", {"mask": Image.fromarray(mask), "feather": 2.5}, via))
    soft = (out > 0) & (out < 255)
    assert soft[20, 6:14].any() and soft[20, 26:34].any()  # both edges of a row are soft
    assert soft.sum() > 4 * 20
    assert out[20, 20] >= 250 and out[1, 1] == 0
    expected = cv2.GaussianBlur(mask, (0, 0), 2.5, borderType=cv2.BORDER_REPLICATE)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_mask_fill_holes_fills_enclosed_not_open(api: httpx.Client, via: str) -> None:
    closed = ring_mask(41, 16, 8)
    notched = ring_mask(41, 16, 8)
    notched[18:23, 20:] = 0  # cut open to the right edge of the ring
    mask = np.concatenate([closed, notched], axis=1)  # 82x41, two shapes side by side
    out = pixels(
        run_image_op(api, "mask", {"mask": Image.fromarray(mask), "fill_holes": True}, via)
    )
    assert np.array_equal(out[:, :41], disk_mask(41, 41, 20, 20, 16))
    assert np.array_equal(out[:, 41:], notched)


def test_mask_operations_in_order(api: httpx.Client) -> None:
    # threshold -> fill_holes -> dilate -> invert, each step by a reference.
    grey = (ring_mask(41, 15, 6) // 255 * 200).astype(np.uint8)
    grey[0:3, 0:3] = 100  # below the threshold: dropped first
    fields = {"mask": Image.fromarray(grey), "threshold": 150, "fill_holes": True}
    fields |= {"dilate": 2, "invert": True}
    out = pixels(run_image_op(api, "mask", fields))
    expected = 255 - dilate_reference(disk_mask(41, 41, 20, 20, 15), 2)
    assert np.array_equal(out, expected)


def test_mask_from_rgba_cutout_uses_alpha(api: httpx.Client) -> None:
    cutout = np.zeros((20, 30, 4), np.uint8)
    cutout[..., :3] = 255
    cutout[5:15, 5:25, 3] = 255
    out = pixels(
        run_image_op(api, "mask", {"mask": Image.fromarray(cutout, "RGBA"), "invert": True})
    )
    assert np.array_equal(out, 255 - cutout[..., 3])


def test_mask_identity_returns_the_mask(api: httpx.Client) -> None:
    mask = gradient_mask(32, 16)
    out = pixels(run_image_op(api, "mask", {"mask": Image.fromarray(mask)}))
    assert np.array_equal(out, mask)


# ---- every op answers in every output format, from a multipart form -----------------------


def op_fields(op: str) -> dict[str, Any]:
    image = scene(48, 32)
    mask = Image.fromarray(disk_mask(48, 32, 24, 16, 10))
    return {
        "resize": {"image": image, "width": 24},
        "crop": {"image": image, "x": 4, "y": 4, "width": 20, "height": 12},
        "convert": {"image": image},
        "extract-object": {"image": image, "mask": mask, "crop": True, "padding": 2},
        "diff": {"image_a": image, "image_b": scene(48, 32, seed=5)},
        "canny": {"image": image, "low_threshold": 30, "high_threshold": 90},
        "mask": {"mask": mask, "dilate": 1},
    }[op]


EXPECTED_SIZE = {
    "resize": (24, 16),
    "crop": (20, 12),
    "convert": (48, 32),
    "extract-object": (25, 25),  # 21x21 disk bbox + 2 padding each side
    "diff": (48, 32),
    "canny": (48, 32),
    "mask": (48, 32),
}


# extract-object has no jpeg: jpeg has no alpha, so it is refused (see test_bad_input_api).
@pytest.mark.parametrize(
    ("op", "fmt"),
    [
        (op, fmt)
        for op in EXPECTED_SIZE
        for fmt in ("png", "jpeg", "webp")
        if not (op == "extract-object" and fmt == "jpeg")
    ],
)
def test_every_op_in_every_format(api: httpx.Client, op: str, fmt: str) -> None:
    fields = {**op_fields(op), "output_format": fmt, "quality": 70}
    result = ok(call(api, op, fields, "multipart"))
    image = result_image(result["heatmap"] if op == "diff" else result, fmt)
    assert image.size == EXPECTED_SIZE[op]
