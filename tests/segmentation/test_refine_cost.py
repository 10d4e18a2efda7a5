"""Smart-mask's `refine` shares the mask op's bounds (issue 16, item 6): radii bounded by the
image, refused before the segmenter works; and masks are computed in the service's bounded
CPU pool. The app runs in-process (its lifespan run here) with the classical segmenter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.segmentation.app import create_app
from easel.segmentation.service import SegmentationService
from easel.segmentation.settings import SegmentationSettings
from tests.segmentation.scenes import make_scene
from tests.support.images import b64

DEADLINE = 60.0
SCENE = make_scene(3, 96)


@asynccontextmanager
async def segmentation(tmp: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SegmentationSettings(segmentation_model="grabcut", data_dir=tmp, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://segmentation") as api:
            yield api


def body(**refine: Any) -> dict[str, Any]:
    return {"image": b64(SCENE.image), "points": [list(SCENE.click)], "refine": refine}


@pytest.mark.parametrize("op", ["dilate", "erode", "feather"])
async def test_a_refine_radius_over_the_images_longer_side_is_a_422(
    op: str, tmp_path: Path
) -> None:
    async with segmentation(tmp_path) as api:
        allowed = await api.post("/api/smart-mask", json=body(**{op: 96}))
        assert allowed.status_code == 200, allowed.text
        refused = await api.post("/api/smart-mask", json=body(**{op: 97}))
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["details"][0]["field"] == f"refine.{op}"
    assert "96" in error["message"]


async def test_masks_are_computed_in_the_services_bounded_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, opened = threading.Event(), threading.Event()
    real = SegmentationService.smart_mask

    def gated(self: SegmentationService, request: Any) -> Any:
        entered.set()
        assert opened.wait(DEADLINE)
        return real(self, request)

    monkeypatch.setattr(SegmentationService, "smart_mask", gated)
    async with segmentation(tmp_path, segmentation_workers=1, segmentation_max_waiting=0) as api:
        running = asyncio.ensure_future(api.post("/api/smart-mask", json=body(dilate=2)))
        await asyncio.to_thread(entered.wait, DEADLINE)
        health = await api.get("/api/health")
        assert health.json()["detail"]["pool"] == {"workers": 1, "running": 1, "waiting": 0}
        async with asyncio.timeout(DEADLINE):
            busy = await api.post("/api/smart-mask", json=body(dilate=2))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        opened.set()
        assert (await running).status_code == 200
