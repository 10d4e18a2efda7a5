"""The FastSAM path end to end on a randomly initialised FastSAM-architecture checkpoint:
real ultralytics loading and prediction, no download (ultralytics runs offline)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from easel.segmentation.app import create_app
from easel.segmentation.segmenters import build_segmenter
from easel.segmentation.segmenters.base import Prompt
from easel.segmentation.segmenters.fastsam import FastSAMPrepared, FastSAMSegmenter, to_image
from easel.segmentation.settings import SegmentationSettings
from tests.segmentation.scenes import make_scene
from tests.support.images import b64
from tests.support.servers import free_port


def settings_for(weights: Path, tmp_path: Path, **extra: object) -> SegmentationSettings:
    values: dict[str, object] = {
        "segmentation_model": "fastsam",
        "models_path": weights.parent,
        "fastsam_weights": Path(weights.name),
        "fastsam_imgsz": 256,
        "segmentation_device": "cpu",
        "data_dir": tmp_path / "data",
    }
    return SegmentationSettings.model_validate({**values, **extra})


@pytest.fixture(scope="module")
def segmenter(fastsam_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> FastSAMSegmenter:
    return FastSAMSegmenter(
        weights=fastsam_weights,
        device="cpu",
        config_dir=tmp_path_factory.mktemp("cfg"),
        imgsz=256,
    )


def test_prepare_and_prompt(segmenter: FastSAMSegmenter) -> None:
    scene = make_scene(2, 300)
    image = scene.image.crop((0, 0, 300, 220))  # not square: letterboxed
    prepared = segmenter.prepare(image)
    assert isinstance(prepared, FastSAMPrepared)
    assert prepared.size == (300, 220)
    assert len(prepared.masks) > 0, "the test checkpoint should propose masks"
    assert prepared.masks.dtype == bool and prepared.scores.shape == (len(prepared.masks),)
    # Random weights put masks anywhere: click where one is.
    y, x = covered_pixel(prepared)
    candidates = segmenter.segment(prepared, Prompt(positive=np.array([[x, y]], float)), 3)
    assert 1 <= len(candidates) <= 3
    for candidate in candidates:
        assert candidate.mask.shape == (220, 300) and candidate.mask.dtype == np.uint8
        assert 0 <= candidate.score <= 1
    assert candidates[0].mask[y, x] == 255  # the clicked pixel is selected


def covered_pixel(prepared: FastSAMPrepared) -> tuple[int, int]:
    """A pixel of the image inside the most masks (and not on a mask's edge)."""
    count = sum(to_image(prepared, m.astype(np.uint8) * 255) // 255 for m in prepared.masks)
    y, x = np.unravel_index(int(np.argmax(count)), count.shape)
    return int(y), int(x)


def test_negative_point_and_box(segmenter: FastSAMSegmenter) -> None:
    prepared = segmenter.prepare(make_scene(3, 256).image)
    y, x = covered_pixel(prepared)
    [plain] = segmenter.segment(prepared, Prompt(positive=np.array([[x, y]], float)), 1)
    # A negative click inside that mask, away from the positive one, rules it out.
    ys, xs = np.nonzero(plain.mask)
    far = int(np.argmax((ys - y) ** 2 + (xs - x) ** 2))
    negative = np.array([[xs[far], ys[far]]], float)
    [other] = segmenter.segment(
        prepared, Prompt(positive=np.array([[x, y]], float), negative=negative), 1
    )
    assert other.mask[ys[far], xs[far]] == 0
    assert not np.array_equal(other.mask, plain.mask)
    [boxed] = segmenter.segment(prepared, Prompt(box=(40.0, 40.0, 200.0, 180.0)), 1)
    assert boxed.mask.shape == (256, 256)
    assert boxed.mask.any()


def test_no_masks_gives_an_empty_mask(fastsam_weights: Path, tmp_path: Path) -> None:
    picky = FastSAMSegmenter(
        weights=fastsam_weights, device="cpu", config_dir=tmp_path, imgsz=64, conf=1.0
    )
    prepared = picky.prepare(Image.new("RGB", (40, 30)))
    [candidate] = picky.segment(prepared, Prompt(positive=np.array([[5.0, 5.0]])), 3)
    assert candidate.mask.shape == (30, 40) and not candidate.mask.any()
    assert candidate.score == 0


def test_auto_uses_fastsam_when_the_weights_exist(fastsam_weights: Path, tmp_path: Path) -> None:
    segmenter, report = build_segmenter(
        settings_for(fastsam_weights, tmp_path, segmentation_model="auto")
    )
    assert segmenter is not None and segmenter.name == "fastsam"
    assert report.fastsam_weights_found and report.device == "cpu" and report.load_time_s > 0
    assert report.error is None


def test_missing_weights(tmp_path: Path) -> None:
    missing = tmp_path / "FastSAM-s.pt"  # an official asset name: `auto` never fetches it
    segmenter, report = build_segmenter(settings_for(missing, tmp_path, segmentation_model="auto"))
    assert segmenter is not None and segmenter.name == "grabcut"
    assert not report.fastsam_weights_found and report.error is None
    # `fastsam` fetches it when its release host answers: here one nobody listens on, so
    # the result is the same on a machine with internet.
    nowhere = f"http://127.0.0.1:{free_port()}/releases"
    segmenter, report = build_segmenter(
        settings_for(missing, tmp_path, fastsam_weights_url=nowhere)
    )
    assert segmenter is None and report.error and "not found" in report.error
    assert not missing.exists()


@pytest.fixture()
async def client(fastsam_weights: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(fastsam_weights, tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://seg") as http:
            yield http


async def test_smart_mask_through_the_app(client: httpx.AsyncClient) -> None:
    health = (await client.get("/api/health")).json()
    assert health["status"] == "healthy"
    assert health["detail"]["segmenter"] == "fastsam"
    assert health["detail"]["fastsam_weights_found"] is True
    assert health["detail"]["device"] == "cpu"
    image = b64(make_scene(5, 200).image)
    body = {"image": image, "points": [[100, 100]], "multimask": True, "max_masks": 2}
    first = (await client.post("/api/smart-mask", json=body)).json()
    assert first["model"] == "fastsam" and first["cached"] is False
    mask = Image.open(io.BytesIO(base64.b64decode(first["mask"])))
    assert mask.mode == "L" and mask.size == (200, 200)
    assert 1 <= len(first["masks"]) <= 2
    again = (await client.post("/api/smart-mask", json=body)).json()
    assert again["cached"] is True and again["mask"] == first["mask"]


async def test_explicit_fastsam_without_weights_answers_503(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path / "absent.pt", tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://seg") as http:
            health = (await http.get("/api/health")).json()
            assert health["status"] == "degraded" and health["detail"]["segmenter"] is None
            body = {"image": b64(Image.new("RGB", (8, 8))), "points": [[1, 1]]}
            response = await http.post("/api/smart-mask", json=body)
            assert response.status_code == 503
            assert "not found" in response.json()["error"]["message"]
