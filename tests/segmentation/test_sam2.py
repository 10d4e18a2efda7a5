"""The SAM 2.1 path end to end on the tiny random SAM 2: the real transformers classes,
loaded from a `save_pretrained` folder as a hub model would be, and easel's API, with the
network blocked throughout."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from easel.segmentation.app import create_app
from easel.segmentation.segmenters import build_segmenter
from easel.segmentation.segmenters.base import Prompt
from easel.segmentation.segmenters.sam2 import Sam2Prepared, Sam2Segmenter, resolve_dtype
from easel.segmentation.segmenters.sam2_tiny import ensure_tiny_sam2
from easel.segmentation.settings import SegmentationSettings
from tests.segmentation.scenes import make_scene
from tests.support.images import b64


def tiny_sam2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SAM 2, built once per session (later calls reuse the folder)."""
    return ensure_tiny_sam2(tmp_path_factory.getbasetemp() / "sam2-tiny")


def block_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every connect and name lookup fails (and is recorded); the hub is offline."""
    attempts: list[object] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network blocked by the test")

    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read at import otherwise
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sam2_folder(tmp_path_factory)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    return block_network(monkeypatch)


def settings_for(folder: Path, tmp_path: Path, **extra: object) -> SegmentationSettings:
    values: dict[str, object] = {
        "segmentation_model": "sam2",
        "sam2_model": str(folder),
        "segmentation_device": "cpu",
        "models_path": tmp_path / "models",
        "data_dir": tmp_path / "data",
    }
    return SegmentationSettings.model_validate({**values, **extra})


def test_the_tiny_model_is_built_once(folder: Path) -> None:
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_sam2(folder) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_prepare_encodes_and_segment_only_decodes(folder: Path, offline: list[object]) -> None:
    segmenter = Sam2Segmenter(source=folder, device="cpu", dtype="auto", local_files_only=True)
    assert segmenter.device == "cpu" and segmenter.dtype == "float32"
    assert segmenter.encoder_calls == 0 and segmenter.load_time_s > 0
    image = make_scene(2, 240).image.crop((0, 0, 240, 170))  # not square
    prepared = segmenter.prepare(image)
    assert isinstance(prepared, Sam2Prepared) and prepared.size == (240, 170)
    assert segmenter.encoder_calls == 1
    prompts = [
        Prompt(positive=np.array([[120.0, 80.0]])),
        Prompt(positive=np.array([[120.0, 80.0], [30.0, 40.0]]), negative=np.array([[200.0, 10]])),
        Prompt(box=(20.0, 20.0, 200.0, 150.0)),
        Prompt(positive=np.array([[60.0, 60.0]]), box=(20.0, 20.0, 200.0, 150.0)),
    ]
    for prompt in prompts:
        for max_masks in (1, 3):
            candidates = segmenter.segment(prepared, prompt, max_masks)
            assert 1 <= len(candidates) <= max_masks
            scores = [candidate.score for candidate in candidates]
            assert scores == sorted(scores, reverse=True)
            for candidate in candidates:
                assert candidate.mask.shape == (170, 240) and candidate.mask.dtype == np.uint8
                assert set(np.unique(candidate.mask)) <= {0, 255}
                assert 0 <= candidate.score <= 1
    assert segmenter.encoder_calls == 1, "segment() ran the image encoder"
    assert offline == []


def test_dtypes() -> None:
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "mps") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int8", "cpu")


def test_bfloat16_runs(folder: Path, offline: list[object]) -> None:
    segmenter = Sam2Segmenter(source=folder, device="cpu", dtype="bfloat16")
    prepared = segmenter.prepare(Image.new("RGB", (50, 40), "gray"))
    [candidate] = segmenter.segment(prepared, Prompt(positive=np.array([[10.0, 10.0]])), 1)
    assert candidate.mask.shape == (40, 50) and 0 <= candidate.score <= 1


def test_tiny_random_is_built_into_the_data_dir(
    folder: Path, tmp_path: Path, offline: list[object]
) -> None:
    segmenter, report = build_segmenter(settings_for(folder, tmp_path, sam2_model="tiny-random"))
    assert segmenter is not None and segmenter.name == "sam2", report.error
    assert report.sam2_model == "tiny-random" and report.sam2_found and report.error is None
    assert (tmp_path / "data" / "models" / "sam2-tiny-random" / "config.json").is_file()
    assert report.reason == "EASEL_SEGMENTATION_MODEL=sam2"


def test_a_missing_hub_model_offline_is_one_line(tmp_path: Path, offline: list[object]) -> None:
    from huggingface_hub import constants

    empty_cache = tmp_path / "hub-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_CACHE", str(empty_cache))
        settings = settings_for(tmp_path, tmp_path, sam2_model="facebook/sam2.1-hiera-small")
        segmenter, report = build_segmenter(settings)
    assert segmenter is None and report.segmenter is None
    assert report.sam2_model == "facebook/sam2.1-hiera-small" and not report.sam2_found
    assert report.error is not None and "\n" not in report.error
    assert "'facebook/sam2.1-hiera-small' is not in the local hub cache" in report.error
    assert "HF_HUB_OFFLINE is set" in report.error and "tiny-random" in report.error
    assert offline == []  # refused without trying the network


def test_a_missing_folder_is_named(tmp_path: Path, offline: list[object]) -> None:
    segmenter, report = build_segmenter(settings_for(tmp_path, tmp_path, sam2_model="./nope"))
    assert segmenter is None
    assert report.error and "SAM 2 model folder MODELS_PATH/nope does not exist" in report.error


@pytest.fixture()
async def served(
    folder: Path, tmp_path: Path, offline: list[object]
) -> AsyncIterator[tuple[httpx.AsyncClient, Sam2Segmenter]]:
    settings = settings_for(folder, tmp_path)
    loaded = build_segmenter(settings)
    segmenter = loaded[0]
    assert isinstance(segmenter, Sam2Segmenter), loaded[1].error
    app = create_app(settings, loaded=loaded)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://seg") as http:
            yield http, segmenter
    assert offline == []


def decoded_size(mask: str) -> tuple[int, int]:
    image = Image.open(io.BytesIO(base64.b64decode(mask)))
    assert image.mode == "L"
    return image.size


async def test_smart_mask_through_the_app(
    served: tuple[httpx.AsyncClient, Sam2Segmenter],
) -> None:
    http, segmenter = served
    health = (await http.get("/api/health")).json()
    assert health["status"] == "healthy"
    detail = health["detail"]
    assert detail["segmenter"] == "sam2" and detail["sam2_found"] is True
    assert detail["device"] == "cpu" and detail["reason"] == "EASEL_SEGMENTATION_MODEL=sam2"
    image = b64(make_scene(5, 200).image.crop((0, 0, 200, 150)))
    body = {"image": image, "points": [[100, 70]], "multimask": True, "max_masks": 3}
    first = (await http.post("/api/smart-mask", json=body)).json()
    assert first["model"] == "sam2" and first["cached"] is False
    assert (first["width"], first["height"]) == (200, 150)
    assert decoded_size(first["mask"]) == (200, 150)
    scores = [candidate["score"] for candidate in first["masks"]]
    assert 1 <= len(scores) <= 3 and scores == sorted(scores, reverse=True)
    assert first["score"] == scores[0] and first["mask"] == first["masks"][0]["mask"]
    assert all(decoded_size(c["mask"]) == (200, 150) for c in first["masks"])
    # A second click on the same image: the cache answers for the image encoder.
    click = {"image": image, "points": [[100, 70], [20, 20]], "labels": [1, 0]}
    second = await http.post("/api/smart-mask", json=click)
    assert second.status_code == 200, second.text
    assert second.json()["cached"] is True
    assert segmenter.encoder_calls == 1
    boxed = {"image": image, "box": [10, 10, 150, 120], "points": [[30, 30]], "labels": [0]}
    third = await http.post("/api/smart-mask", json=boxed)
    assert third.status_code == 200, third.text
    assert decoded_size(third.json()["mask"]) == (200, 150)
    assert segmenter.encoder_calls == 1
    other = {"image": b64(Image.new("RGB", (64, 48), "white")), "points": [[5, 5]]}
    assert (await http.post("/api/smart-mask", json=other)).json()["cached"] is False
    assert segmenter.encoder_calls == 2


async def test_bad_points_are_refused_before_the_encoder(
    served: tuple[httpx.AsyncClient, Sam2Segmenter],
) -> None:
    http, segmenter = served
    image = b64(Image.new("RGB", (32, 32)))
    mismatched = {"image": image, "points": [[1, 1]], "labels": [1, 0]}
    response = await http.post("/api/smart-mask", json=mismatched)
    assert response.status_code == 422 and "labels" in response.text
    assert segmenter.encoder_calls == 0
