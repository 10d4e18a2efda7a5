"""The app and the service ask the engine what it can do (`capabilities`,
`describe_workflows`): a test engine implementing the protocol, run through the real
generation app, and the diffusers engine's empty workflow listing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from easel.core.errors import Conflict
from easel.core.generation_api import GenerationRequest
from easel.generation.app import create_app
from easel.generation.engines.base import (
    CallKey,
    CancelledFn,
    Engine,
    EngineCall,
    EngineCapabilities,
    EngineHealth,
    EngineItem,
    EngineOutput,
    ItemProgress,
    ModelListing,
    Prepared,
    ProgressFn,
    WorkflowListing,
)
from easel.generation.engines.comfyui.workflows import (
    DEFAULT_MODEL_FILES,
    EXAMPLES,
    WorkflowCatalogue,
)
from easel.generation.settings import GenerationSettings
from tests.generation.comfyui.conftest import write_workflows
from tests.generation.helpers import sse_events
from tests.support.servers import free_port

LISTING = WorkflowListing(
    workflows=[{"name": "glow", "description": "a test workflow", "parameters": {}}],
    mode_workflows={"text-to-image": "glow"},
)


class SolidEngine:
    """Solid red images in two steps; it keeps what reached it, so a test sees what the
    service let through and asked for."""

    name = "solid"

    def __init__(
        self, capabilities: EngineCapabilities, listing: WorkflowListing | None = None
    ) -> None:
        self.capabilities = capabilities
        self.listing = listing
        self.prepared: list[GenerationRequest] = []
        self.items: list[EngineItem] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def prepare(
        self, request: GenerationRequest, input_size: tuple[int, int] | None = None
    ) -> Prepared:
        self.prepared.append(request)
        mode = request.resolved_mode
        key = CallKey(request.model or "solid", mode, 8, 8, steps=2, guidance_scale=0.0)
        return Prepared(key=key)

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        self.items.extend(call.items)
        red = Image.new("RGB", (8, 8), "red")

        def steps() -> None:  # on a thread, as a pipeline runs: progress arrives from there
            for step in (1, 2):
                progress(
                    [
                        ItemProgress(step, 2, red if i.wants_preview_every else None)
                        for i in call.items
                    ]
                )

        await asyncio.to_thread(steps)
        return EngineOutput(images=[[red] * item.num_images for item in call.items], steps_run=2)

    def health(self) -> EngineHealth:
        return EngineHealth(ready=True)

    def describe_workflows(self) -> WorkflowListing | None:
        return self.listing

    def describe_models(self) -> ModelListing:
        return ModelListing(default_model=None, models=[])

    def is_loaded(self, model: str) -> bool:
        return True

    async def load_model(self, name: str) -> dict[str, Any]:
        raise Conflict("this engine has no models to load")  # as ComfyUI's answers

    async def unload_model(self, name: str) -> dict[str, Any]:
        raise Conflict("this engine has no models to unload")


@asynccontextmanager
async def service(
    engine: Engine | None, tmp: Path, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GenerationSettings(batch_window_ms=0, data_dir=tmp, **settings), engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://generation") as client:
            yield client


async def test_the_workflow_listing_is_the_engines(tmp_path: Path) -> None:
    async with service(SolidEngine(EngineCapabilities(workflows=True), LISTING), tmp_path) as api:
        answer = await api.get("/api/workflows")
    assert answer.status_code == 200
    assert answer.json() == {
        "engine": "solid",
        "workflows": [{"name": "glow", "description": "a test workflow", "parameters": {}}],
        "mode_workflows": {"text-to-image": "glow"},
    }


async def test_the_diffusers_engine_lists_no_workflows(tmp_path: Path) -> None:
    # The real engine, built from settings; lazy: nothing is loaded to answer this.
    async with service(None, tmp_path, generation_load="lazy") as api:
        answer = await api.get("/api/workflows")
    assert answer.json() == {"engine": "diffusers", "workflows": [], "mode_workflows": {}}


async def test_the_comfyui_engine_lists_its_catalogue_and_mode_map(tmp_path: Path) -> None:
    folder = write_workflows(tmp_path / "workflows")
    modes = {"edit": "invert", "text-to-image": "text-to-image"}
    async with service(
        None,
        tmp_path,
        generation_engine="comfyui",
        comfyui_api_url=f"http://127.0.0.1:{free_port()}",  # the listing needs no ComfyUI
        workflows_path=folder,
        comfyui_workflows=modes,
        connect_timeout=0.5,
    ) as api:
        answer = (await api.get("/api/workflows")).json()
    catalogue = WorkflowCatalogue.load([EXAMPLES, folder], DEFAULT_MODEL_FILES)
    described = [catalogue.workflows[name].describe() for name in sorted(catalogue.workflows)]
    assert [w["name"] for w in answer["workflows"]] == [
        "image-to-image", "inpaint", "invert", "missing-node", "text-to-image"
    ]  # fmt: skip
    assert answer == {
        "engine": "comfyui",
        "workflows": json.loads(json.dumps(described)),
        "mode_workflows": modes,
    }


@pytest.mark.parametrize("validates", [True, False])
async def test_per_mode_checks_are_left_to_an_engine_that_validates_inputs(
    tmp_path: Path, validates: bool
) -> None:
    engine = SolidEngine(EngineCapabilities(validates_inputs=validates))
    async with service(engine, tmp_path) as api:
        # inpaint without images: the service's own checks refuse it.
        answer = await api.post("/api/generate", json={"prompt": "x", "mode": "inpaint"})
    if validates:
        assert answer.status_code == 200, answer.text
        assert [r.mode for r in engine.prepared] == ["inpaint"]
    else:
        assert answer.status_code == 422
        assert answer.json()["error"]["details"][0]["field"] == "input_image"
        assert engine.prepared == []


@pytest.mark.parametrize("workflows", [True, False])
async def test_the_first_version_workflow_names_a_workflow_or_a_mode(
    tmp_path: Path, workflows: bool
) -> None:
    engine = SolidEngine(EngineCapabilities(validates_inputs=True, workflows=workflows))
    async with service(engine, tmp_path) as api:
        answer = await api.post("/generate", json={"workflow": "edit", "params": {"seed": 1}})
    assert answer.json()["status"] == "done", answer.text
    (request,) = engine.prepared
    if workflows:
        assert request.model == "edit"
    else:
        assert (request.model, request.mode) == (None, "edit")


@pytest.mark.parametrize("previews", [True, False])
async def test_previews_are_asked_only_of_an_engine_that_makes_them(
    tmp_path: Path, previews: bool
) -> None:
    engine = SolidEngine(EngineCapabilities(previews=previews))
    body = {"prompt": "x", "preview_every": 1}
    async with service(engine, tmp_path) as api:
        # Read whole: an ASGI transport buffers the stream; its events are all there.
        events = list(sse_events(await api.post("/api/generate/stream", json=body)))
    progress = [data for name, data in events if name == "progress"]
    assert [p["step"] for p in progress] == [1, 2]
    assert events[-1][0] == "result"
    (item,) = engine.items
    if previews:
        assert item.wants_preview_every == 1
        assert all(p["preview"] for p in progress)
    else:
        assert item.wants_preview_every is None
        assert all(p["preview"] is None for p in progress)
