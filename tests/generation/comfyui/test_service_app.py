"""The generation service itself (in-process, its lifespan run here) with the ComfyUI
engine: its first-version `/health` and `POST /generate {workflow, params}`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from easel.generation.app import create_app
from easel.generation.settings import GenerationSettings
from tests.generation.comfyui.conftest import write_workflows
from tests.support.fake_comfyui import FakeComfyUI
from tests.support.images import decode_b64
from tests.support.servers import free_port


@asynccontextmanager
async def service(url: str, tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = GenerationSettings(
        generation_engine="comfyui",
        comfyui_api_url=url,
        workflows_path=write_workflows(tmp / "workflows"),
        comfyui_poll_interval=0.1,
        comfyui_reconnect_backoff=0.05,
        connect_timeout=0.5,
        batch_window_ms=0,
        data_dir=tmp / "data",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://generation") as client:
            yield client


async def test_compat_health_and_generate_run_the_workflow(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake.url, tmp_path) as client:
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json() == {
            "status": "healthy",
            "comfyui_available": True,
            "service": "generation",
            "version": health.json()["version"],
        }
        answer = await client.post("/generate", json={"workflow": "invert",
                                                       "params": {"color": 0x00FF00}})  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "done" and body["error"] is None
        assert decode_b64(body["image"]).convert("RGB").getpixel((1, 1)) == (255, 0, 255)
        t2i = {"prompt": "a boat", "steps": 2, "seed": 4, "width": 64, "height": 64}
        answer = await client.post("/generate", json={"workflow": "text-to-image", "params": t2i})
        assert answer.json()["status"] == "done"
        assert fake.prompts[-1]["prompt"]["3"]["inputs"]["seed"] == 4

        fake.fail_classes["KSampler"] = "the GPU fell over"
        answer = await client.post("/generate", json={"workflow": "text-to-image", "params": t2i})
        assert answer.status_code == 200
        failed = answer.json()
        assert failed["status"] == "failed" and failed["image"] is None
        assert "the GPU fell over" in failed["error"]


async def test_compat_generate_refuses_bad_params_naming_them(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    posted = len(fake.prompts)
    async with service(fake.url, tmp_path) as client:
        cases = [
            ({"workflow": "invert", "params": {"colour": 1}}, "params.colour"),
            ({"workflow": "invert", "params": {"color": -1}}, "params.color"),
            ({"workflow": "text-to-image", "params": {"prompt": "x", "steps": 0}}, "params.steps"),
            ({"workflow": "../invert", "params": {}}, "workflow"),
            ({"workflow": "nope", "params": {"prompt": "x"}}, "workflow"),
            ({"params": {}}, "workflow"),
        ]
        for body, field in cases:
            answer = await client.post("/generate", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["error"]["details"][0]["field"] == field, answer.text
    assert len(fake.prompts) == posted


async def test_comfyui_down_health_503_and_clear_failures(tmp_path: Path) -> None:
    async with service(f"http://127.0.0.1:{free_port()}", tmp_path) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert health.json()["comfyui_available"] is False
        detail = (await client.get("/api/health")).json()
        assert detail["status"] == "degraded" and "unreachable" in detail["detail"]["last_error"]
        answer = await client.post("/api/generate", json={"prompt": "x", "steps": 2})
        assert answer.status_code == 503
        assert "ComfyUI at http://127.0.0.1" in answer.json()["error"]["message"]
        legacy = await client.post("/generate", json={"workflow": "invert", "params": {}})
        assert legacy.json()["status"] == "failed" and "unreachable" in legacy.json()["error"]
        listing = (await client.get("/api/workflows")).json()
        assert "invert" in {w["name"] for w in listing["workflows"]}  # known without ComfyUI
