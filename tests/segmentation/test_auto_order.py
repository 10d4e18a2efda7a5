"""`auto`: SAM 2.1 when its model is here, else FastSAM when its weights are, else GrabCut,
with health saying which and why; and FastSAM's weights fetched on first use when asked
for by name, or refused in one line offline without a download attempt."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from easel.segmentation.segmenters import build_segmenter, uses_sam2
from easel.segmentation.settings import SegmentationSettings
from tests.segmentation.test_sam2 import block_network, tiny_sam2_folder

HUB_ID = "facebook/sam2.1-hiera-tiny"


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sam2_folder(tmp_path_factory)


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache of the test's own (the user's is never read)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, hub_cache: Path) -> list[object]:
    return block_network(monkeypatch)


@pytest.fixture()
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls to ultralytics' download function (recorded; none downloads)."""
    from ultralytics.utils import downloads as ultralytics_downloads

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        ultralytics_downloads, "safe_download", lambda **kwargs: calls.append(kwargs)
    )
    return calls


def settings_for(tmp_path: Path, **extra: object) -> SegmentationSettings:
    values: dict[str, object] = {
        "segmentation_model": "auto",
        "models_path": tmp_path / "models",
        "data_dir": tmp_path / "data",
        "segmentation_device": "cpu",
        "fastsam_imgsz": 128,
    }
    return SegmentationSettings.model_validate({**values, **extra})


def put_fastsam(models: Path, weights: Path, name: str = "FastSAM-s.pt") -> None:
    models.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, models / name)


def test_sam2_folder_first(
    sam2_folder: Path, fastsam_weights: Path, tmp_path: Path, offline: list[object]
) -> None:
    # The layout `easel download` writes: MODELS_PATH/<hub id>.
    shutil.copytree(sam2_folder, tmp_path / "models" / HUB_ID)
    put_fastsam(tmp_path / "models", fastsam_weights)
    settings = settings_for(tmp_path)
    assert uses_sam2(settings)
    segmenter, report = build_segmenter(settings)
    assert segmenter is not None and segmenter.name == "sam2", report.error
    assert report.sam2_model == f"MODELS_PATH/{HUB_ID}" and report.sam2_found
    assert report.fastsam_weights_found and report.error is None
    assert report.reason == f"auto: SAM 2 model MODELS_PATH/{HUB_ID} found"
    assert offline == []


def test_sam2_from_the_hub_cache(
    sam2_folder: Path, hub_cache: Path, tmp_path: Path, offline: list[object]
) -> None:
    # What `hf download facebook/sam2.1-hiera-tiny` leaves in the hub cache.
    repo = hub_cache / f"models--{HUB_ID.replace('/', '--')}"
    revision = "0" * 40
    shutil.copytree(sam2_folder, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    segmenter, report = build_segmenter(settings_for(tmp_path))
    assert segmenter is not None and segmenter.name == "sam2", report.error
    assert report.sam2_model == HUB_ID and report.sam2_found
    assert report.reason == f"auto: SAM 2 model {HUB_ID} found"
    assert offline == []


def test_fastsam_when_only_its_weights_are_here(
    fastsam_weights: Path, tmp_path: Path, offline: list[object], downloads: list[object]
) -> None:
    put_fastsam(tmp_path / "models", fastsam_weights)
    settings = settings_for(tmp_path)
    assert not uses_sam2(settings)
    segmenter, report = build_segmenter(settings)
    assert segmenter is not None and segmenter.name == "fastsam", report.error
    assert not report.sam2_found and report.sam2_model == HUB_ID
    assert report.reason == (
        f"auto: no SAM 2 model {HUB_ID} here (folder or hub cache); "
        "FastSAM weights found at MODELS_PATH/FastSAM-s.pt"
    )
    assert downloads == [] and offline == []


def test_grabcut_when_neither_is_here(
    tmp_path: Path, offline: list[object], downloads: list[object]
) -> None:
    segmenter, report = build_segmenter(settings_for(tmp_path))
    assert segmenter is not None and segmenter.name == "grabcut"
    assert report.error is None and not report.sam2_found and not report.fastsam_weights_found
    assert report.reason == (
        f"auto: no SAM 2 model {HUB_ID} here (folder or hub cache); "
        "no FastSAM weights at MODELS_PATH/FastSAM-s.pt; the classical segmenter serves"
    )
    # auto never fetches: not even a probe of the network.
    assert downloads == [] and offline == []
    assert not (tmp_path / "models" / "FastSAM-s.pt").exists()


def test_a_broken_sam2_folder_falls_through_and_says_so(
    tmp_path: Path, offline: list[object]
) -> None:
    broken = tmp_path / "models" / HUB_ID
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    segmenter, report = build_segmenter(settings_for(tmp_path))
    assert segmenter is not None and segmenter.name == "grabcut"
    assert report.error and report.error.startswith(
        f"SAM 2 failed to load from MODELS_PATH/{HUB_ID}"
    )
    assert "failed to load" in report.reason and "classical" in report.reason


@pytest.mark.parametrize("name", ["FastSAM-s.pt", "FastSAM-x.pt"])
def test_missing_fastsam_offline_is_one_line_without_a_download(
    name: str, tmp_path: Path, offline: list[object], downloads: list[object]
) -> None:
    settings = settings_for(tmp_path, segmentation_model="fastsam", fastsam_weights=name)
    segmenter, report = build_segmenter(settings)
    assert segmenter is None and report.error is not None
    url = f"https://github.com/ultralytics/assets/releases/download/v8.3.0/{name}"
    assert report.error == (
        f"FastSAM weights not found at MODELS_PATH/{name} and github.com is unreachable: "
        f"download {url} and put it there, or use EASEL_SEGMENTATION_MODEL=grabcut"
    )
    assert report.reason.startswith("EASEL_SEGMENTATION_MODEL=fastsam could not load")
    assert downloads == [], "a download was attempted"
    assert len(offline) == 1  # the one probe, refused
    assert not (tmp_path / "models" / name).exists()


def test_an_unofficial_fastsam_name_is_never_fetched(
    tmp_path: Path, offline: list[object], downloads: list[object]
) -> None:
    settings = settings_for(tmp_path, segmentation_model="fastsam", fastsam_weights="mine.pt")
    segmenter, report = build_segmenter(settings)
    assert segmenter is None and report.error and "not found at MODELS_PATH/mine.pt" in report.error
    assert downloads == [] and offline == []


def test_missing_fastsam_online_is_fetched_on_first_use(
    fastsam_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from ultralytics.utils import downloads as ultralytics_downloads

    probes: list[tuple[str, int]] = []

    class Connected:
        def __enter__(self) -> Connected:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    def connect(address: tuple[str, int], timeout: float) -> Connected:
        probes.append(address)
        return Connected()

    calls: list[dict[str, Any]] = []

    def fake_download(**kwargs: Any) -> Path:  # stands in for GitHub's release asset
        calls.append(kwargs)
        target = Path(kwargs["dir"]) / str(kwargs["file"])
        put_fastsam(target.parent, fastsam_weights, target.name)
        return target

    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(ultralytics_downloads, "safe_download", fake_download)
    settings = settings_for(
        tmp_path,
        segmentation_model="fastsam",
        fastsam_weights_url="https://example.test/assets/",
    )
    segmenter, report = build_segmenter(settings)
    assert segmenter is not None and segmenter.name == "fastsam", report.error
    assert probes == [("example.test", 443)]
    [call] = calls
    assert call["url"] == "https://example.test/assets/FastSAM-s.pt"
    assert Path(call["dir"]) / call["file"] == tmp_path / "models" / "FastSAM-s.pt"
    assert report.fastsam_weights_found and report.error is None
