"""Bad input and limits on the image-utils API: status, the JSON error envelope, the field named.

Envelope (SPEC.md): `{"error": {"code", "message", "details"?}, "request_id"}`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image

from tests.support.images import (
    b64,
    bomb_png,
    disk_mask,
    encode,
    exif_jpeg,
    noise_image,
    padded_png,
    request_kwargs,
    scene,
)
from tests.support.servers import Stack, running_stack

OPS = ("resize", "crop", "convert", "extract-object", "diff", "canny", "mask")


def call(api: httpx.Client, op: str, fields: dict[str, Any], via: str = "base64") -> httpx.Response:
    return api.post(f"/api/image-utils/{op}", **request_kwargs(fields, via))  # type: ignore[arg-type]


def assert_error(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """Check the envelope; with `field`, that the first detail (and the message) names it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["request_id"] == response.headers["x-request-id"]
    if field is not None:
        details = error["details"]
        assert isinstance(details, list) and details, error
        assert details[0]["field"] == field, details
        if status == 422:
            assert details[0]["message"]
        assert field in error["message"]
    return error


def invalid(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    return assert_error(response, 422, "invalid_input", field)


def valid_fields(op: str) -> dict[str, Any]:
    image = scene(48, 32)
    mask = Image.fromarray(disk_mask(48, 32, 24, 16, 10))
    return {
        "resize": {"image": image, "width": 24},
        "crop": {"image": image, "x": 4, "y": 4, "width": 20, "height": 12},
        "convert": {"image": image, "output_format": "png"},
        "extract-object": {"image": image, "mask": mask},
        "diff": {"image_a": image, "image_b": scene(48, 32, seed=5)},
        "canny": {"image": image, "low_threshold": 50},
        "mask": {"mask": mask, "dilate": 1},
    }[op]


IMAGE_FIELDS = [
    ("resize", "image"),
    ("crop", "image"),
    ("convert", "image"),
    ("extract-object", "image"),
    ("extract-object", "mask"),
    ("diff", "image_a"),
    ("diff", "image_b"),
    ("canny", "image"),
    ("mask", "mask"),
]
# Image fields that get every case; the others get the core cases (the codec is shared).
FULL_FIELDS = (("resize", "image"), ("diff", "image_b"), ("extract-object", "mask"))


def spread(cases: Any, core: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(op, field, case): core cases for every image field, every case for FULL_FIELDS."""
    return [
        (op, field, case)
        for op, field in IMAGE_FIELDS
        for case in cases
        if case in core or (op, field) in FULL_FIELDS
    ]


def test_valid_fields_are_valid(api: httpx.Client) -> None:
    # The baseline every case below spoils in one field.
    for op in OPS:
        assert call(api, op, valid_fields(op)).status_code == 200, op


# ---- image fields ---------------------------------------------------------------------------

NOT_AN_IMAGE = b"this is plain text, not an image at all"

BAD_IMAGE_TEXT = {
    "bad_base64": "this is not base64 !!!",
    "bad_base64_chars": "iVBORw0KGgo$%^&*()",
    "not_an_image": base64.b64encode(NOT_AN_IMAGE).decode(),
    "data_url_without_base64": "data:image/png," + b64(Image.new("RGB", (4, 4))),
    "data_url_without_comma": "data:image/png;base64",
    "empty": "",
    "empty_data_url": "data:image/png;base64,",
    "unsupported_ico": b64(Image.new("RGB", (16, 16)), "ICO"),
    "unsupported_ppm": b64(Image.new("RGB", (16, 16)), "PPM"),
    "unsupported_tga": b64(Image.new("RGB", (16, 16)), "TGA"),
    "truncated_png": base64.b64encode(encode(noise_image(64, 64))[:2000]).decode(),
}


@pytest.mark.parametrize(
    ("op", "field", "case"),
    spread(
        sorted(BAD_IMAGE_TEXT),
        core=("bad_base64", "not_an_image", "data_url_without_base64", "unsupported_ico"),
    ),
)
def test_bad_image_text_is_422_naming_the_field(
    api: httpx.Client, op: str, field: str, case: str
) -> None:
    fields = {**valid_fields(op), field: BAD_IMAGE_TEXT[case]}
    error = invalid(call(api, op, fields), field)
    if case.startswith("unsupported"):
        assert "unsupported" in error["message"]
        assert case.rsplit("_", 1)[1].upper() in error["message"]


BAD_IMAGE_FILES = {
    "not_an_image": NOT_AN_IMAGE,
    "empty_file": b"",
    "unsupported_ico": encode(Image.new("RGB", (16, 16)), "ICO"),
    "truncated_png": encode(noise_image(64, 64))[:2000],
}


@pytest.mark.parametrize(
    ("op", "field", "case"), spread(sorted(BAD_IMAGE_FILES), core=("not_an_image",))
)
def test_bad_uploaded_file_is_422_naming_the_field(
    api: httpx.Client, op: str, field: str, case: str
) -> None:
    fields = {**valid_fields(op), field: BAD_IMAGE_FILES[case]}
    invalid(call(api, op, fields, "multipart"), field)


@pytest.mark.parametrize(("op", "field"), IMAGE_FIELDS)
def test_bad_base64_in_a_form_text_field(api: httpx.Client, op: str, field: str) -> None:
    kwargs = request_kwargs(valid_fields(op), "multipart")
    files: dict[str, Any] = kwargs["files"]  # type: ignore[assignment]
    data: dict[str, str] = kwargs["data"]  # type: ignore[assignment]
    del files[field]
    data[field] = "###not base64###"
    invalid(api.post(f"/api/image-utils/{op}", files=files, data=data), field)


def form_text(fields: dict[str, str], via: str) -> dict[str, Any]:
    """`httpx.post` kwargs sending only text fields, as multipart or url-encoded."""
    if via == "multipart":
        return {"files": {k: (None, v) for k, v in fields.items()}}  # parts without filename
    return {"data": fields}


@pytest.mark.parametrize("via", ["multipart", "urlencoded"])
def test_base64_image_in_a_form_text_field_is_accepted(api: httpx.Client, via: str) -> None:
    image = noise_image(20, 10, "RGB", seed=1)
    fields = {"image": b64(image), "output_format": "png"}
    response = api.post("/api/image-utils/convert", **form_text(fields, via))
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (20, 10)


@pytest.mark.parametrize(("op", "field"), IMAGE_FIELDS)
def test_image_field_of_the_wrong_type(api: httpx.Client, op: str, field: str) -> None:
    for value in (123, ["a", "b"], {"data": "x"}, None, True):
        error = invalid(call(api, op, {**valid_fields(op), field: value}))
        # The field is named (exactly: see the next test).
        assert {d["field"].split(".")[0] for d in error["details"]} == {field}, error


@pytest.mark.parametrize("value", [123, None])
def test_image_field_of_the_wrong_type_is_named_exactly(api: httpx.Client, value: object) -> None:
    # Not "image.str" / "image.bytes": the client knows a field `image`, not pydantic's union.
    error = invalid(call(api, "resize", {"image": value, "width": 10}), "image")
    assert {d["field"] for d in error["details"]} == {"image"}


# ---- field validation -------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["base64", "multipart"])
@pytest.mark.parametrize("op", OPS)
def test_unknown_field_is_422_naming_it(api: httpx.Client, op: str, via: str) -> None:
    error = invalid(call(api, op, {**valid_fields(op), "sharpen": 3}, via), "sharpen")
    assert error["details"][0]["message"] == "unknown field"


def test_several_unknown_fields_are_all_named(api: httpx.Client) -> None:
    fields = {**valid_fields("resize"), "alpha": 1, "beta": "x"}
    error = invalid(call(api, "resize", fields))
    assert {d["field"] for d in error["details"]} == {"alpha", "beta"}


MISSING = [
    ("resize", "image"),
    ("crop", "image"),
    ("crop", "x"),
    ("crop", "y"),
    ("crop", "width"),
    ("crop", "height"),
    ("convert", "image"),
    ("convert", "output_format"),
    ("extract-object", "image"),
    ("extract-object", "mask"),
    ("diff", "image_a"),
    ("diff", "image_b"),
    ("canny", "image"),
    ("mask", "mask"),
]


@pytest.mark.parametrize("via", ["base64", "multipart"])
@pytest.mark.parametrize(("op", "field"), MISSING)
def test_missing_required_field_is_422_naming_it(
    api: httpx.Client, op: str, field: str, via: str
) -> None:
    fields = valid_fields(op)
    del fields[field]
    error = invalid(call(api, op, fields, via), field)
    assert "required" in error["details"][0]["message"].lower()


def test_empty_object_names_every_required_field(api: httpx.Client) -> None:
    error = invalid(api.post("/api/image-utils/crop", json={}))
    named = {d["field"] for d in error["details"]}
    assert {"image", "x", "y", "width", "height"} <= named


WRONG = [
    ("resize", "width", "wide"),
    ("resize", "width", 0),
    ("resize", "width", 16385),
    ("resize", "height", -5),
    ("resize", "scale", "big"),
    ("resize", "scale", 0),
    ("resize", "scale", 17),
    ("resize", "fit", "squash"),
    ("resize", "resample", "box"),
    ("resize", "output_format", "gif"),
    ("resize", "quality", 0),
    ("resize", "quality", 101),
    ("resize", "quality", "best"),
    ("crop", "x", -1),
    ("crop", "y", 1.5),
    ("crop", "width", 0),
    ("crop", "height", "tall"),
    ("convert", "output_format", "bmp"),
    ("extract-object", "crop", "perhaps"),
    ("extract-object", "padding", -1),
    ("canny", "low_threshold", -1),
    ("canny", "high_threshold", 1001),
    ("canny", "aperture_size", 4),
    ("canny", "l2_gradient", "sometimes"),
    ("mask", "threshold", 256),
    ("mask", "dilate", -1),
    ("mask", "erode", 513),
    ("mask", "feather", "soft"),
    ("mask", "invert", "maybe"),
    ("mask", "fill_holes", [1]),
]


@pytest.mark.parametrize(("op", "field", "value"), WRONG)
def test_wrong_value_is_422_naming_the_field(
    api: httpx.Client, op: str, field: str, value: object
) -> None:
    invalid(call(api, op, {**valid_fields(op), field: value}), field)


@pytest.mark.parametrize(
    ("op", "field", "value"),
    [
        ("resize", "width", "wide"),
        ("resize", "width", "[1, 2]"),  # JSON text in a form: a list, still not an int
        ("crop", "x", "-3"),
        ("mask", "dilate", '{"r": 2}'),
        ("mask", "invert", "maybe"),
        ("canny", "low_threshold", "low"),
    ],
)
def test_wrong_value_in_a_form_is_422_naming_the_field(
    api: httpx.Client, op: str, field: str, value: str
) -> None:
    invalid(call(api, op, {**valid_fields(op), field: value}, "multipart"), field)


def test_form_strings_are_coerced(api: httpx.Client) -> None:
    fields = {"mask": Image.fromarray(disk_mask(40, 30, 20, 15, 8))}
    fields |= {"threshold": "100", "dilate": "2", "feather": "0.5", "invert": "true"}
    response = call(api, "mask", fields, "multipart")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "sizing",
    [
        {"scale": 0.5, "width": 10},  # both ways to size
        {"scale": 0.5, "height": 10},
        {},  # no way to size
        {"width": 10, "fit": "cover"},  # cover needs both sides
        {"height": 10, "fit": "stretch"},
    ],
)
def test_resize_sizing_rules(api: httpx.Client, sizing: dict[str, Any]) -> None:
    error = invalid(call(api, "resize", {"image": scene(), **sizing}))
    assert error["details"]


@pytest.mark.parametrize(
    ("box", "field"),
    [
        ({"x": 48, "y": 0, "width": 1, "height": 1}, "x"),
        ({"x": 100, "y": 0, "width": 1, "height": 1}, "x"),
        ({"x": 0, "y": 32, "width": 1, "height": 1}, "y"),
        ({"x": 0, "y": 0, "width": 49, "height": 1}, "width"),
        ({"x": 40, "y": 0, "width": 9, "height": 1}, "width"),
        ({"x": 0, "y": 0, "width": 1, "height": 33}, "height"),
        ({"x": 0, "y": 30, "width": 1, "height": 3}, "height"),
    ],
)
@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_crop_box_outside_the_image(
    api: httpx.Client, box: dict[str, int], field: str, via: str
) -> None:
    invalid(call(api, "crop", {"image": scene(48, 32), **box}, via), field)


def test_crop_box_is_checked_against_the_rotated_image(api: httpx.Client) -> None:
    data = exif_jpeg(scene(60, 30), orientation=6)  # shown as 30x60
    box = {"x": 40, "y": 0, "width": 5, "height": 5}  # inside 60x30, outside 30x60
    invalid(call(api, "crop", {"image": data, **box}), "x")


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_extract_object_mask_of_another_size(api: httpx.Client, via: str) -> None:
    fields = {"image": scene(48, 32), "mask": Image.fromarray(disk_mask(32, 48, 16, 24, 5))}
    error = invalid(call(api, "extract-object", fields, via), "mask")
    assert "32x48" in error["message"] and "48x32" in error["message"]


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_diff_images_of_different_sizes(api: httpx.Client, via: str) -> None:
    fields = {"image_a": scene(48, 32), "image_b": scene(47, 32)}
    invalid(call(api, "diff", fields, via), "image_b")


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_extract_object_to_jpeg_is_refused(api: httpx.Client, via: str) -> None:
    fields = {**valid_fields("extract-object"), "output_format": "jpeg"}
    error = invalid(call(api, "extract-object", fields, via), "output_format")
    assert "alpha" in error["message"]


def test_extract_object_crop_to_an_empty_mask(api: httpx.Client) -> None:
    fields = {"image": scene(48, 32), "mask": Image.new("L", (48, 32), 0), "crop": True}
    invalid(call(api, "extract-object", fields), "mask")


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_canny_low_above_high(api: httpx.Client, via: str) -> None:
    fields = {"image": scene(), "low_threshold": 150, "high_threshold": 100}
    invalid(call(api, "canny", fields, via), "low_threshold")


def test_canny_low_above_the_default_high(api: httpx.Client) -> None:
    # high_threshold defaults to 200: a low threshold of 300 contradicts it.
    response = call(api, "canny", {"image": scene(), "low_threshold": 300})
    error = invalid(response)
    assert {d["field"] for d in error["details"]} & {"low_threshold", "high_threshold"}


# ---- bodies -----------------------------------------------------------------------------------


BODIES = (b"{not json", b'{"image": ', b"[1, 2, 3]", b'"a string"', b"42", b"null", b"")


@pytest.mark.parametrize(
    ("op", "body"),
    [(op, body) for op in OPS for body in BODIES if op == "resize" or body in BODIES[::2]],
)
def test_body_that_is_not_a_json_object(api: httpx.Client, op: str, body: bytes) -> None:
    response = api.post(
        f"/api/image-utils/{op}", content=body, headers={"content-type": "application/json"}
    )
    invalid(response, "body")


def test_json_without_a_content_type_is_read_as_json(api: httpx.Client) -> None:
    body = json.dumps({"image": b64(scene()), "scale": 0.5}).encode()
    response = api.post("/api/image-utils/resize", content=body)
    assert response.status_code == 200, response.text


CONTENT_TYPES = ("text/plain", "application/xml", "image/png", "application/octet-stream")


@pytest.mark.parametrize(
    ("op", "content_type"),
    [(op, ct) for op in OPS for ct in CONTENT_TYPES if op == "resize" or ct == "text/plain"],
)
def test_unsupported_content_type_is_415(api: httpx.Client, op: str, content_type: str) -> None:
    response = api.post(
        f"/api/image-utils/{op}", content=b"hello", headers={"content-type": content_type}
    )
    error = assert_error(response, 415, "unsupported_media_type")
    assert content_type in error["message"]


def test_unknown_op_is_404_with_envelope(api: httpx.Client) -> None:
    assert_error(
        api.post("/api/image-utils/rotate", json={"image": b64(scene())}), 404, "not_found"
    )


def test_get_on_an_op_is_405_with_envelope(api: httpx.Client) -> None:
    assert_error(api.get("/api/image-utils/resize"), 405, "method_not_allowed")


def test_request_id_is_kept_from_the_caller(api: httpx.Client) -> None:
    response = api.post(
        "/api/image-utils/resize", json={"image": "???"}, headers={"x-request-id": "trace-42"}
    )
    invalid(response)
    assert response.json()["request_id"] == "trace-42"


# ---- limits: a stack with small limits ----------------------------------------------------------

MAX_BYTES = int(0.05 * 1024 * 1024)  # 52428
MAX_PIXELS = 10_000
SMALL_LIMITS = {"EASEL_MAX_IMAGE_SIZE_MB": "0.05", "EASEL_MAX_IMAGE_PIXELS": str(MAX_PIXELS)}


@pytest.fixture(scope="module", params=("all-in-one", "split"))
def small(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A client of a stack started with a 0.05 MB, 10,000 pixel image limit."""
    tmp: Path = tmp_path_factory.mktemp(f"small-limits-{request.param}")
    with (
        running_stack(str(request.param), tmp, env=SMALL_LIMITS) as stack,
        httpx.Client(base_url=stack.url, timeout=60) as client,
    ):
        yield client


def too_large(response: httpx.Response, field: str) -> dict[str, Any]:
    return assert_error(response, 413, "payload_too_large", field)


def heavy_png() -> bytes:
    """Over the byte limit with only 100 pixels."""
    return padded_png(Image.new("RGB", (10, 10), (1, 2, 3)), MAX_BYTES + 8000)


@pytest.mark.parametrize(
    ("op", "field", "via"), spread(("base64", "data_url", "multipart"), core=("base64",))
)
def test_image_over_the_byte_limit_is_413(
    small: httpx.Client, op: str, field: str, via: str
) -> None:
    fields = valid_fields(op)
    # Make the other images small enough for the pixel limit too.
    for key, value in fields.items():
        if isinstance(value, Image.Image):
            fields[key] = value.resize((10, 10))
    fields[field] = heavy_png()
    if op == "crop":
        fields |= {"x": 0, "y": 0, "width": 5, "height": 5}
    error = too_large(call(small, op, fields, via), field)
    assert "MB" in error["message"]


def test_image_under_both_limits_is_accepted(small: httpx.Client) -> None:
    image = noise_image(100, 100, "RGB", seed=3)  # exactly 10,000 pixels, ~30 KB
    assert len(encode(image)) < MAX_BYTES
    for via in ("base64", "multipart"):
        response = call(small, "convert", {"image": image, "output_format": "png"}, via)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("op", "field", "via"), spread(("base64", "data_url", "multipart"), core=("base64",))
)
def test_image_over_the_pixel_limit_is_413(
    small: httpx.Client, op: str, field: str, via: str
) -> None:
    fields = valid_fields(op)
    for key, value in fields.items():
        if isinstance(value, Image.Image):
            fields[key] = value.resize((101, 99))  # 9,999 pixels: under
    fields[field] = Image.new("RGB", (101, 100), (200, 10, 10))  # 10,100 pixels: over
    if op == "crop":
        fields |= {"x": 0, "y": 0, "width": 5, "height": 5}
    error = too_large(call(small, op, fields, via), field)
    assert error["details"][0]["width"] == 101
    assert error["details"][0]["height"] == 100


def test_resize_beyond_the_pixel_limit_is_413(small: httpx.Client) -> None:
    response = call(small, "resize", {"image": Image.new("RGB", (50, 50)), "scale": 2.5})
    assert_error(response, 413, "payload_too_large")
    response = call(small, "resize", {"image": Image.new("RGB", (50, 50)), "scale": 2})
    assert response.status_code == 200, response.text  # 100x100 is at the limit


@pytest.mark.parametrize("via", ["multipart", "urlencoded"])
def test_image_over_the_byte_limit_as_base64_form_text_is_413(
    small: httpx.Client, via: str
) -> None:
    fields = {"image": base64.b64encode(heavy_png()).decode(), "output_format": "png"}
    too_large(small.post("/api/image-utils/convert", **form_text(fields, via)), "image")


@pytest.mark.parametrize("via", ["multipart", "urlencoded"])
def test_image_under_the_byte_limit_as_base64_form_text_is_accepted(
    small: httpx.Client, via: str
) -> None:
    # 45 KB of image is under the 51.2 KB limit; its base64 text (60 KB) is not the image.
    image_bytes = padded_png(Image.new("RGB", (10, 10)), 45_000)
    assert len(image_bytes) < MAX_BYTES < len(base64.b64encode(image_bytes))
    json_response = call(small, "convert", {"image": image_bytes, "output_format": "png"})
    assert json_response.status_code == 200, json_response.text
    fields = {"image": base64.b64encode(image_bytes).decode(), "output_format": "png"}
    response = small.post("/api/image-utils/convert", **form_text(fields, via))
    assert response.status_code == 200, response.text


# ---- a decompression bomb against the default limits ----------------------------------------

BOMB_SIDE = 7100  # 50.4 megapixels: over the default limit of 40,000,000


@pytest.fixture(scope="session")
def bomb() -> bytes:
    data = bomb_png(BOMB_SIDE, BOMB_SIDE)
    assert len(data) < 500_000  # tiny on the wire
    return data


def serving_pid(stack: Stack) -> int:
    server = stack.services.get("image_utils", stack.gateway)
    return server.process.pid


def peak_rss(pid: int) -> int | None:
    """VmHWM (peak resident set) of a process, in bytes, where /proc has it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_decompression_bomb_is_413_without_decoding(
    api: httpx.Client, stack: Stack, bomb: bytes, via: str
) -> None:
    pid = serving_pid(stack)
    process = psutil.Process(pid)
    call(api, "convert", {"image": scene(), "output_format": "png"})  # warm up
    reset_peak_rss(pid)
    rss_before = process.memory_info().rss
    peak_before = peak_rss(pid)

    response = call(api, "convert", {"image": bomb, "output_format": "png"}, via)
    error = too_large(response, "image")
    assert error["details"][0]["width"] == BOMB_SIDE
    assert error["details"][0]["height"] == BOMB_SIDE
    assert "40000000" in error["message"]

    full_decode = BOMB_SIDE * BOMB_SIDE * 3  # ~150 MB as RGB
    grown = process.memory_info().rss - rss_before
    assert grown < full_decode // 5, f"RSS grew by {grown / 1e6:.0f} MB"
    peak_after = peak_rss(pid)
    if peak_before is not None and peak_after is not None:
        assert peak_after - peak_before < full_decode // 5, (
            f"peak RSS grew by {(peak_after - peak_before) / 1e6:.0f} MB"
        )
    assert process.is_running()


def test_bomb_in_a_second_image_field(api: httpx.Client, bomb: bytes) -> None:
    fields = {"image_a": scene(), "image_b": bomb}
    too_large(call(api, "diff", fields), "image_b")
    fields = {"image": scene(), "mask": bomb}
    too_large(call(api, "extract-object", fields, "multipart"), "mask")
