"""Errors and health a client can read name files relative to the configured folders
(`MODELS_PATH/...`, `WORKFLOWS_PATH/...`), never by the server's absolute paths."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from easel.core.paths import public_text
from easel.segmentation.app import create_app as create_segmentation_app
from easel.segmentation.settings import SegmentationSettings
from tests.generation.test_capabilities import service
from tests.support.servers import free_port


def test_public_text_names_paths_by_their_folders(tmp_path: Path) -> None:
    models = tmp_path / "models"
    text = f"no file named model_index.json found in directory {models}/mine; see {models}"
    assert public_text(text, {"MODELS_PATH": models}) == (
        "no file named model_index.json found in directory MODELS_PATH/mine; see MODELS_PATH"
    )
    other = f"{tmp_path}-elsewhere/x"  # a sibling folder with the same prefix: not inside
    assert public_text(other, {"MODELS_PATH": tmp_path}) == other


async def test_a_broken_workflow_file_is_named_within_the_workflows_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "broken.json").write_text("{not json")
    async with service(
        None,
        tmp_path,
        generation_engine="comfyui",
        comfyui_api_url=f"http://127.0.0.1:{free_port()}",
        workflows_path=folder,
        comfyui_example_workflows=False,
        connect_timeout=0.5,
    ) as api:
        health = (await api.get("/api/health")).json()
    assert health["detail"]["workflow_errors"]["broken"].startswith("WORKFLOWS_PATH/broken.json: ")
    assert str(tmp_path) not in json.dumps(health)


async def test_a_model_that_fails_to_load_is_named_within_the_models_folder(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    (models / "mine").mkdir(parents=True)  # a folder without a pipeline in it
    async with service(
        None,
        tmp_path,
        models_path=models,
        generation_models={"mine": {"source": str(models / "mine"), "family": "sd"}},
        generation_model="mine",
        generation_load="lazy",
    ) as api:
        answer = await api.post("/api/generate", json={"prompt": "x", "steps": 1})
        health = (await api.get("/api/health")).json()
    assert answer.status_code == 503, answer.text
    assert "MODELS_PATH/mine" in answer.json()["error"]["message"]
    assert str(tmp_path) not in answer.text
    assert health["detail"]["last_error"] and str(tmp_path) not in json.dumps(health)


async def test_segmentation_health_names_the_weights_within_the_models_folder(
    tmp_path: Path,
) -> None:
    settings = SegmentationSettings(
        models_path=tmp_path / "models", segmentation_model="fastsam", data_dir=tmp_path
    )
    app = create_segmentation_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://seg") as client:
            health = (await client.get("/api/health")).json()
    assert health["detail"]["fastsam_weights"].startswith("MODELS_PATH/")
    assert str(tmp_path) not in json.dumps(health)
