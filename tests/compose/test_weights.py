"""Weights fetched into MODELS_PATH ahead of time (`easel.compose.weights`, Modal's
`download_weights`): the plan, the skips, the offline refusal in one line, and real
fetches (a FastSAM file from a real local HTTP server; the hub's download stood in for,
as the hub cannot be reached here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from easel.compose.settings import EaselSettings
from easel.compose.weights import (
    MARKER,
    WeightsError,
    WeightsItem,
    download_main,
    fetch,
    plan_downloads,
)
from easel.generation.engines.diffusers.hub import HubReach
from tests.support.downstream import serving_in_thread
from tests.support.servers import free_port

WEIGHTS = b"\x80fastsam-weights" * 100


def _settings(tmp: Path, **values: object) -> EaselSettings:
    return EaselSettings.load(models_path=tmp / "models", data_dir=tmp / "data", **values)


def _plan(tmp: Path, names: list[str], **values: object) -> list[WeightsItem]:
    settings = _settings(tmp, **values)
    return plan_downloads(settings.generation, settings.segmentation, names)


def _unreachable() -> HubReach:
    def refused(address: tuple[str, int], timeout: float) -> object:
        raise OSError("no route to host")

    return HubReach(endpoint="https://huggingface.co", timeout_s=1, recheck_s=60, connect=refused)


def _never_asked() -> HubReach:
    def asked(address: tuple[str, int], timeout: float) -> object:
        raise AssertionError("the hub was asked")

    return HubReach(endpoint="https://huggingface.co", timeout_s=1, recheck_s=60, connect=asked)


def _reachable() -> HubReach:
    return HubReach(
        endpoint="https://huggingface.co", timeout_s=1, recheck_s=60, connect=lambda a, t: None
    )


def test_the_default_plan_is_the_generation_model_and_fastsam(tmp_path: Path) -> None:
    items = _plan(tmp_path, [], generation_model="qwen-image-edit")
    assert [(i.name, i.kind, i.present) for i in items] == [
        ("qwen-image-edit", "hub", False),
        ("fastsam", "file", False),
    ]
    assert items[0].source == "Qwen/Qwen-Image-Edit"
    # Where generation looks first for a relative source: MODELS_PATH/<hub id>.
    assert items[0].destination == tmp_path / "models" / "Qwen" / "Qwen-Image-Edit"
    assert items[1].destination == tmp_path / "models" / "FastSAM-s.pt"
    assert items[1].source.endswith("/FastSAM-s.pt")
    assert "would fetch qwen-image-edit: Qwen/Qwen-Image-Edit ->" in items[0].describe()


def test_grabcut_needs_no_weights_and_names_are_deduplicated(tmp_path: Path) -> None:
    items = _plan(tmp_path, [], generation_model="sd-turbo", segmentation_model="grabcut")
    assert [i.name for i in items] == ["sd-turbo"]
    assert len(_plan(tmp_path, ["sd-turbo", "sd-turbo", "FastSAM-s.pt", "fastsam"])) == 2


def test_sam2_comes_from_the_hub_into_models_path(tmp_path: Path) -> None:
    items = _plan(tmp_path, [], generation_model="sd-turbo", segmentation_model="sam2")
    assert [(i.name, i.kind) for i in items] == [("sd-turbo", "hub"), ("sam2", "hub")]
    sam2 = items[1]
    assert sam2.source == "facebook/sam2.1-hiera-tiny"
    # Where the segmenter looks first: MODELS_PATH/<hub id>.
    assert sam2.destination == tmp_path / "models" / "facebook" / "sam2.1-hiera-tiny"
    large = _plan(tmp_path, ["sam2"], sam2_model="facebook/sam2.1-hiera-large")
    assert [i.source for i in large] == ["facebook/sam2.1-hiera-large"]
    tiny = _plan(tmp_path, ["sam2"], sam2_model="tiny-random")
    assert [(i.kind, i.present) for i in tiny] == [("builtin", True)]


def test_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as caught:
        _plan(tmp_path, ["stable-cascade"])
    message = str(caught.value)
    assert "'stable-cascade'" in message and "qwen-image-edit" in message
    assert "fastsam" in message and "sam2" in message and "\n" not in message


def test_builtin_models_and_user_models(tmp_path: Path) -> None:
    models = {
        "mine": {"source": "someorg/some-model", "family": "sdxl"},
        "local": {"source": "my-folder", "family": "sd"},
    }
    (tmp_path / "models" / "my-folder").mkdir(parents=True)
    items = _plan(tmp_path, ["tiny-random", "mine", "local"], generation_models=models)
    assert [(i.kind, i.present) for i in items] == [
        ("builtin", True),
        ("hub", False),
        ("folder", True),
    ]
    assert items[1].destination == tmp_path / "models" / "someorg" / "some-model"
    assert "nothing to fetch" in items[0].describe()
    assert items[2].describe().startswith("skip local")


def test_a_completed_download_is_present(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "stabilityai" / "sd-turbo"
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("{}")
    (item,) = _plan(tmp_path, ["sd-turbo"])
    assert (item.kind, item.present) == ("hub", True)


def test_offline_the_plan_is_refused_in_one_line_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    def no_download(**kwargs: object) -> str:
        raise AssertionError("downloaded while the hub is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    items = _plan(tmp_path, ["qwen-image-edit"])
    with pytest.raises(WeightsError) as caught:
        fetch(items, token=None, hub=_unreachable(), report=print)
    message = str(caught.value)
    assert "\n" not in message
    assert "qwen-image-edit (Qwen/Qwen-Image-Edit)" in message
    assert "unreachable" in message
    assert not (tmp_path / "models").exists()


def test_what_is_there_is_skipped_without_asking_the_hub(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "Qwen" / "Qwen-Image-Edit"
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("{}")
    (tmp_path / "models" / "FastSAM-s.pt").write_bytes(WEIGHTS)
    items = _plan(tmp_path, ["qwen-image-edit", "fastsam", "tiny-random"])
    assert fetch(items, token=None, hub=_never_asked(), report=print) == []


def test_a_hub_model_lands_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    calls: list[dict[str, object]] = []

    def download(**kwargs: object) -> str:
        # The hub's download, which cannot run here: it writes the repo into local_dir.
        calls.append(kwargs)
        local = Path(str(kwargs["local_dir"]))
        local.mkdir(parents=True, exist_ok=True)
        (local / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
        return str(local)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    items = _plan(tmp_path, ["sd-turbo"])
    lines: list[str] = []
    fetched = fetch(items, token="hf_x", hub=_reachable(), report=lines.append)
    destination = tmp_path / "models" / "stabilityai" / "sd-turbo"
    assert fetched == items
    assert calls[0]["repo_id"] == "stabilityai/sd-turbo" and calls[0]["token"] == "hf_x"
    assert Path(str(calls[0]["local_dir"])).name == "sd-turbo.partial"
    assert (destination / "model_index.json").is_file()
    assert json.loads((destination / MARKER).read_text())["source"] == "stabilityai/sd-turbo"
    assert not (destination.parent / "sd-turbo.partial").exists()
    assert lines and lines[0].startswith("fetched sd-turbo in ")
    (again,) = _plan(tmp_path, ["sd-turbo"])
    assert again.present


def test_a_hub_failure_is_one_line_and_leaves_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    def denied(**kwargs: object) -> str:
        Path(str(kwargs["local_dir"])).mkdir(parents=True)
        raise RuntimeError("401 Client Error.\n\nAccess to model is restricted")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", denied)
    with pytest.raises(WeightsError) as caught:
        fetch(_plan(tmp_path, ["sd-turbo"]), token=None, hub=_reachable(), report=print)
    assert "\n" not in str(caught.value) and "restricted" in str(caught.value)
    # Resumable, never mistaken for a model: only the .partial folder is there.
    assert not (tmp_path / "models" / "stabilityai" / "sd-turbo").exists()
    (item,) = _plan(tmp_path, ["sd-turbo"])
    assert (item.kind, item.present) == ("hub", False)


@pytest.fixture
def release_server() -> Iterator[str]:
    async def asset(request: Request) -> Response:
        if request.path_params["name"] == "FastSAM-s.pt":
            return Response(WEIGHTS, media_type="application/octet-stream")
        return PlainTextResponse("Not Found", status_code=404)

    port = free_port()
    app = Starlette(routes=[Route("/assets/{name}", asset)])
    with serving_in_thread(app, port):
        yield f"http://127.0.0.1:{port}/assets"


def test_fastsam_weights_come_from_the_release_url(tmp_path: Path, release_server: str) -> None:
    settings = _settings(tmp_path)
    items = plan_downloads(
        settings.generation, settings.segmentation, ["fastsam"], fastsam_url=release_server
    )
    assert items[0].source == f"{release_server}/FastSAM-s.pt"
    fetch(items, token=None, hub=_never_asked(), report=print)
    assert (tmp_path / "models" / "FastSAM-s.pt").read_bytes() == WEIGHTS


def test_a_missing_fastsam_file_is_one_line_and_leaves_nothing(
    tmp_path: Path, release_server: str
) -> None:
    settings = _settings(tmp_path, fastsam_weights=Path("FastSAM-x.pt"))
    items = plan_downloads(
        settings.generation, settings.segmentation, ["fastsam"], fastsam_url=release_server
    )
    with pytest.raises(WeightsError) as caught:
        fetch(items, token=None, hub=_never_asked(), report=print)
    assert "404" in str(caught.value) and "\n" not in str(caught.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_download_main_says_its_plan_and_fails_in_one_line_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELS_PATH", str(tmp_path / "models"))
    monkeypatch.setenv("EASEL_GENERATION_MODEL", "qwen-image-edit")
    monkeypatch.setenv("EASEL_SEGMENTATION_MODEL", "grabcut")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    lines: list[str] = []
    with pytest.raises(WeightsError) as caught:
        download_main([], report=lines.append)
    assert lines == [
        "would fetch qwen-image-edit: Qwen/Qwen-Image-Edit -> "
        f"{tmp_path / 'models' / 'Qwen' / 'Qwen-Image-Edit'}"
    ]
    assert "HF_HUB_OFFLINE" in str(caught.value) and "\n" not in str(caught.value)
