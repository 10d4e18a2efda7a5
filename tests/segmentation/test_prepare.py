"""Prepare once, click many times: `POST /api/smart-mask/prepare` answers an `image_id`
that `/api/smart-mask` takes instead of the image, through the gateway in both
topologies; an unknown or expired id is a 404 naming `image_id`; the body of before keeps
working unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from easel.core.errors import Conflict, NotFound
from easel.core.images import ImageCodec
from easel.core.settings import SharedSettings
from easel.segmentation.cache import PreparedCache
from easel.segmentation.schemas import PrepareRequest, SmartMaskRequest
from easel.segmentation.segmenters.grabcut import GrabCutSegmenter
from easel.segmentation.service import Limits, SegmentationService
from tests.segmentation.scenes import iou, make_scene
from tests.segmentation.test_api import decode, error_of
from tests.support.images import b64, request_kwargs

SCENE = make_scene(5, 288)


def prepare(api: httpx.Client, image: Any, via: str = "base64") -> dict[str, Any]:
    answer = api.post("/api/smart-mask/prepare", **request_kwargs({"image": image}, via))  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize("via", ["base64", "multipart"])
def test_a_prepared_image_takes_clicks_by_id(api: httpx.Client, via: str) -> None:
    prepared = prepare(api, SCENE.image, via)
    assert (prepared["width"], prepared["height"]) == SCENE.size
    assert prepared["expires_in"] > 0 and len(prepared["image_id"]) == 32
    fields = {"image_id": prepared["image_id"], "points": [list(SCENE.click)]}
    by_id = api.post("/api/smart-mask", **request_kwargs(fields, via))  # type: ignore[arg-type]
    assert by_id.status_code == 200, by_id.text
    body = by_id.json()
    assert body["cached"] is True and (body["width"], body["height"]) == SCENE.size
    assert iou(decode(body["mask"]), SCENE.truth) >= 0.9
    # The same image sent whole gives the same mask, from the same cache entry.
    whole = api.post(
        "/api/smart-mask", json={"image": b64(SCENE.image), **fields} | {"image_id": None}
    )
    assert whole.status_code == 200, whole.text
    assert whole.json()["mask"] == body["mask"] and whole.json()["cached"] is True
    assert prepare(api, SCENE.image)["cached"] is True


def test_an_unknown_image_id_is_a_404_naming_it(api: httpx.Client) -> None:
    answer = api.post("/api/smart-mask", json={"image_id": "0" * 32, "points": [[1, 1]]})
    error = error_of(answer, 404)
    assert error["code"] == "not_found" and error["details"] == {"field": "image_id"}
    assert "prepare" in error["message"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"points": [[1, 1]]}, "image"),
        ({"image": "IMAGE", "image_id": "abc", "points": [[1, 1]]}, "image_id"),
        ({"image_id": "", "points": [[1, 1]]}, "image_id"),
    ],
)
def test_image_or_image_id_exactly_one(
    api: httpx.Client, fields: dict[str, Any], field: str
) -> None:
    if fields.get("image") == "IMAGE":
        fields = {**fields, "image": b64(SCENE.image)}
    error = error_of(api.post("/api/smart-mask", json=fields), 422)
    assert [d["field"] for d in error["details"]] == [field]


def test_clicks_on_a_prepared_image_are_checked_against_its_size(api: httpx.Client) -> None:
    image_id = prepare(api, SCENE.image)["image_id"]
    answer = api.post("/api/smart-mask", json={"image_id": image_id, "points": [[5000, 5]]})
    assert error_of(answer, 422)["details"][0]["field"] == "points.0"


def test_prepare_refuses_a_bad_image(api: httpx.Client) -> None:
    answer = api.post("/api/smart-mask/prepare", json={"image": "bm90IGFuIGltYWdl"})
    assert error_of(answer, 422)["details"][0]["field"] == "image"
    missing = api.post("/api/smart-mask/prepare", json={})
    assert error_of(missing, 422)["details"][0]["field"] == "image"


# ---- expiry and a cache that is off: the service itself, with a clock of its own ------------
def service(cache: PreparedCache) -> SegmentationService:
    return SegmentationService(
        segmenter=GrabCutSegmenter(),
        codec=ImageCodec.from_settings(SharedSettings()),
        cache=cache,
        limits=Limits(),
    )


def test_an_id_expires_ttl_seconds_after_its_last_use() -> None:
    now = [0.0]
    segmentation = service(PreparedCache(4, ttl=60, clock=lambda: now[0]))
    image_id = segmentation.prepare(PrepareRequest(image=b64(SCENE.image))).image_id
    click = SmartMaskRequest(image_id=image_id, points=[SCENE.click])
    for moment in (50.0, 100.0, 150.0):  # each use keeps it alive for another minute
        now[0] = moment
        assert segmentation.smart_mask(click).cached is True
    now[0] = 211.0
    with pytest.raises(NotFound):
        segmentation.smart_mask(click)
    assert segmentation.cache.stats()["expired"] == 1


def test_with_the_cache_off_prepare_says_so() -> None:
    with pytest.raises(Conflict, match="EASEL_SEGMENTATION_CACHE_SIZE=0"):
        service(PreparedCache(0)).prepare(PrepareRequest(image=b64(SCENE.image)))
