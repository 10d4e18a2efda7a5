"""POST /api/smart-mask through the gateway, in both topologies (the classical segmenter:
no weights are configured)."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.segmentation.scenes import iou, make_scene
from tests.support.images import b64, bomb_png, request_kwargs
from tests.support.servers import Stack

SCENE = make_scene(7, 320)


def post(api: httpx.Client, fields: dict[str, Any], via: str = "base64") -> httpx.Response:
    return api.post("/api/smart-mask", **request_kwargs(fields, via))  # type: ignore[arg-type]


def decode(mask: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(mask)))
    assert image.mode == "L"
    return np.asarray(image)


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_point_mask(api: httpx.Client, via: str) -> None:
    response = post(api, {"image": SCENE.image, "points": [list(SCENE.click)]}, via)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "grabcut"
    assert (body["width"], body["height"]) == SCENE.size
    mask = decode(body["mask"])
    assert mask.shape == (320, 320)
    assert iou(mask, SCENE.truth) >= 0.9
    assert body["area"] == int((mask >= 128).sum())
    ys, xs = np.nonzero(mask >= 128)
    assert body["bbox"] == [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    assert 0 <= body["score"] <= 1 and body["masks"] is None


def test_re_click_on_the_same_image_is_cached(api: httpx.Client) -> None:
    image = b64(make_scene(11, 256).image)
    first = post(api, {"image": image, "points": [[128, 128]]}).json()
    second = post(api, {"image": image, "points": [[128, 128]], "labels": [1]}).json()
    assert first["cached"] is False and second["cached"] is True
    assert second["mask"] == first["mask"]


def test_box_multimask_and_refine(api: httpx.Client) -> None:
    fields = {"image": SCENE.image, "box": SCENE.box(), "multimask": True, "max_masks": 3}
    body = post(api, fields).json()
    assert 1 <= len(body["masks"]) <= 3
    assert body["masks"][0]["mask"] == body["mask"]
    plain = decode(body["mask"])
    refined = post(api, {**fields, "multimask": False, "refine": {"dilate": 4, "feather": 1.5}})
    grown = decode(refined.json()["mask"])
    assert refined.json()["area"] > body["area"]
    assert len(np.unique(grown)) > 2  # feathered edges
    assert (grown[plain >= 128] >= 128).all()


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"points": []}, "points"),
        ({"points": [[10, 10]], "labels": [1, 0]}, "labels"),
        ({"points": [[10, 10]], "labels": [0]}, "labels"),
        ({"points": [[10, 10], [500, 5]]}, "points.1"),
        ({"points": [[-1, 5]]}, "points.0"),
        ({"points": [[5]]}, "points.0.1"),
        ({"points": [[5, 5]], "labels": [2]}, "labels.0"),
        ({"box": [50, 50, 10, 10]}, "box"),
        ({"box": [0, 0, 400, 100]}, "box"),
        ({"points": [[5, 5]], "max_masks": 0}, "max_masks"),
        ({"points": [[5, 5]], "refine": {"dilate": -1}}, "refine.dilate"),
        ({"points": [[5, 5]], "colour": "red"}, "colour"),
        ({"points": [[5, 5]], "image": "not base64!"}, "image"),
    ],
)
def test_bad_input_names_the_field(api: httpx.Client, fields: dict[str, Any], field: str) -> None:
    error = error_of(post(api, {"image": SCENE.image, **fields}), 422)
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field, error
    assert field in error["message"]


def test_huge_image_is_refused_by_the_codec(api: httpx.Client) -> None:
    error = error_of(post(api, {"image": bomb_png(8000, 8000), "points": [[1, 1]]}), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"][0]["field"] == "image"


def test_health_reports_the_segmenter(api: httpx.Client, stack: Stack) -> None:
    body = api.get("/api/system/health").json()
    report = body["services"]["segmentation"]
    assert report["status"] == "healthy"
    split = stack.topology == "split"
    expected = stack.services["segmentation"].url if split else "in-process"
    assert report["location"] == expected
    detail = report["detail"]
    assert detail["segmenter"] == "grabcut" and detail["configured"] == "auto"
    assert detail["fastsam_weights_found"] is False and detail["device"] == "cpu"
    assert detail["load_time_s"] >= 0 and detail["cache"]["capacity"] == 16
