"""Models from configuration: a local folder of another family, and a hub model offline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from easel.generation.tiny import build_tiny_sdxl
from tests.generation.helpers import WAIT, image_of
from tests.support.images import b64, disk_mask, noise_image
from tests.support.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def sdxl_server(tmp_path_factory) -> Iterator[ServerProcess]:
    models = tmp_path_factory.mktemp("models")
    build_tiny_sdxl(models / "tiny-xl")
    declared = {
        "tiny-xl": {"source": "tiny-xl", "family": "sdxl", "default_steps": 2, "default_size": 64}
    }
    env = {
        "EASEL_MODELS_PATH": str(models),  # the relative source resolves under it
        "EASEL_GENERATION_MODELS": json.dumps(declared),
        "EASEL_GENERATION_MODEL": "tiny-xl",
        "EASEL_GENERATION_LOAD": "startup",
    }
    server = start_server("generation", tmp_path_factory.mktemp("sdxl"), env=env)
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["text-to-image", "edit", "inpaint"])
def test_sdxl_family_from_a_local_folder(sdxl_server: ServerProcess, mode: str) -> None:
    body: dict = {"prompt": "a castle", "seed": 3}
    if mode != "text-to-image":
        body["input_image"] = b64(noise_image(64, 64))
    if mode == "inpaint":
        body["mask_image"] = b64(Image.fromarray(disk_mask(64, 64, 32, 32, 20), "L"))
    response = httpx.post(f"{sdxl_server.url}/api/generate", json=body, timeout=WAIT)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["model"], result["mode"], result["steps"]) == ("tiny-xl", mode, 2)
    assert image_of(result).size == (64, 64)
    health = httpx.get(f"{sdxl_server.url}/api/health").json()
    assert health["detail"]["family"] == "sdxl"
    assert health["detail"]["device"] == "cpu"
    assert health["detail"]["load_seconds"] > 0


def test_offline_hub_model_degrades_generation_only(tmp_path) -> None:
    # The default model is a hub id; HF_HUB_OFFLINE=1 (set for every test server) makes
    # the download fail at once, as on a machine without internet.
    env = {"EASEL_GENERATION_MODEL": "sd-turbo", "EASEL_GENERATION_LOAD": "startup"}
    server = start_server("all", tmp_path, env=env)
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            body = httpx.get(f"{server.url}/api/system/health", timeout=WAIT).json()
            if body["services"]["generation"]["detail"].get("last_error"):
                break
            time.sleep(0.1)
        generation = body["services"]["generation"]
        assert generation["status"] == "degraded"
        message = generation["detail"]["last_error"]
        assert "sd-turbo" in message and "EASEL_GENERATION_MODELS" in message
        assert "tiny-random" in message
        assert body["status"] == "degraded"
        assert body["services"]["image_utils"]["status"] == "healthy"

        refused = httpx.post(f"{server.url}/api/generate", json={"prompt": "x"}, timeout=WAIT)
        assert refused.status_code == 503
        assert "EASEL_GENERATION_MODELS" in refused.json()["error"]["message"]
        crop = {"image": b64(noise_image(8, 8)), "x": 0, "y": 0, "width": 4, "height": 4}
        assert httpx.post(f"{server.url}/api/image-utils/crop", json=crop).status_code == 200
    finally:
        server.stop()


def test_generation_service_first_version_health(tmp_path) -> None:
    env = {"EASEL_GENERATION_MODEL": "sd-turbo", "EASEL_GENERATION_LOAD": "startup"}
    server = start_server("generation", tmp_path, env=env)
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            legacy = httpx.get(f"{server.url}/health")
            if legacy.status_code == 503:
                break
            time.sleep(0.1)
        assert legacy.status_code == 503
        assert legacy.json() == {
            "status": "unhealthy",
            "comfyui_available": False,
            "service": "generation",
            "version": httpx.get(f"{server.url}/api/health").json()["version"],
        }
    finally:
        server.stop()
