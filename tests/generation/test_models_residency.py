"""The models API (issue 21, item 1) through the generation app's HTTP API, with the tiny
random models: list, load, unload (memory accounted, the pipeline really dropped), LRU
eviction under a budget of two, a request for a model not loaded (loaded, its stream
saying `loading` first; or refused with 409), and a model busy in a call kept."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.client import AsyncClient
from easel.generation.app import create_app
from easel.generation.engines.base import CancelledFn, EngineCall, EngineOutput, ProgressFn
from easel.generation.engines.diffusers import DiffusersEngine
from easel.generation.settings import GenerationSettings, ModelSpec
from tests.generation.helpers import WAIT, sse_events
from tests.support.images import b64, noise_image

# As in test_calls.py: a numpy 2 deprecation inside diffusers' scheduler, an error here only.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

SD, XL, COPY = "tiny-random", "tiny-random-xl", "tiny-random-copy"
# A third model for the budget of two: the same built-in weights, loaded on their own.
THIRD = {COPY: ModelSpec(source="builtin:tiny-random", family="sd", default_size=64)}
QUICK = {"prompt": "a lighthouse", "steps": 2, "seed": 1}


def settings_of(tmp: Path, **values: Any) -> GenerationSettings:
    fields: dict[str, Any] = {
        "data_dir": tmp,
        "generation_model": SD,
        "generation_load": "lazy",
        "generation_models": THIRD,
        "batch_window_ms": 0,
    }
    return GenerationSettings(**{**fields, **values})


@asynccontextmanager
async def served(
    settings: GenerationSettings, engine: DiffusersEngine | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, DiffusersEngine]]:
    engine = engine or DiffusersEngine.from_settings(settings)
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://generation", timeout=WAIT
        ) as api:
            yield api, engine


async def listed(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = await api.get("/api/models")
    assert answer.status_code == 200, answer.text
    return {model["name"]: model for model in answer.json()["models"]}


async def loaded_names(api: httpx.AsyncClient) -> set[str]:
    return {name for name, model in (await listed(api)).items() if model["loaded"]}


async def load(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    answer = await api.post(f"/api/models/{name}/load")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_the_listing_says_what_each_model_is_and_that_none_is_loaded(
    tmp_path: Path,
) -> None:
    async with served(settings_of(tmp_path)) as (api, _):
        body = (await api.get("/api/models")).json()
    models = {model["name"]: model for model in body["models"]}
    tiny = models[SD]
    assert tiny["source"] == "builtin:tiny-random" and tiny["family"] == "sd"
    assert tiny["default"] is True and tiny["loaded"] is False
    assert tiny["state"] == "not loaded" and tiny["error"] is None
    assert (tiny["device"], tiny["memory_bytes"], tiny["load_seconds"]) == (None, None, None)
    assert isinstance(tiny["loras"], list) and isinstance(tiny["controlnets"], list)
    assert models["sd-turbo"]["source"] == "stabilityai/sd-turbo"  # a hub id, as configured
    assert body["budget"] == {
        "max_models": 1,
        "memory_bytes": None,
        "memory_gb": None,
        "used_bytes": 0,
        "on_unloaded": "load",
    }


async def test_a_local_folder_is_named_under_models_path(tmp_path: Path) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    mine = {"mine": ModelSpec(source=str(tmp_path / "models" / "mine"), family="sd")}
    settings = settings_of(tmp_path, models_path=tmp_path / "models", generation_models=mine)
    async with served(settings) as (api, _):
        assert (await listed(api))["mine"]["source"] == "MODELS_PATH/mine"


async def test_load_then_unload_frees_the_model(tmp_path: Path) -> None:
    async with served(settings_of(tmp_path)) as (api, engine):
        entry = await load(api, SD)
        assert entry["state"] == "loaded" and entry["loaded"] is True
        assert entry["device"] == "cpu" and entry["dtype"] == "float32"
        assert entry["memory_bytes"] > 0 and entry["load_seconds"] > 0
        assert entry["message"].startswith("loaded in")
        assert (await load(api, SD))["message"] == "already loaded"
        used = (await api.get("/api/models")).json()["budget"]["used_bytes"]
        assert used == entry["memory_bytes"]

        # An edit makes the image-to-image pipeline with from_pipe: shared, not counted twice.
        edit = {**QUICK, "input_image": b64(noise_image(64, 64)), "model": SD}
        assert (await api.post("/api/generate", json=edit)).status_code == 200
        assert (await listed(api))[SD]["memory_bytes"] == entry["memory_bytes"]

        pipeline = weakref.ref(engine.loaded[SD].base)
        answer = await api.post(f"/api/models/{SD}/unload")
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"] == "unloaded"
        after = (await listed(api))[SD]
        assert after["state"] == "not loaded" and after["memory_bytes"] is None
        assert (await api.get("/api/models")).json()["budget"]["used_bytes"] == 0
        gc.collect()
        assert pipeline() is None, "the engine still holds the pipeline"

        again = await api.post(f"/api/models/{SD}/unload")
        assert again.status_code == 200 and again.json()["message"] == "was not loaded"
        for verb in ("load", "unload"):
            unknown = await api.post(f"/api/models/no-such-model/{verb}")
            assert unknown.status_code == 404
            assert unknown.json()["error"]["details"]["model"] == "no-such-model"


async def test_the_least_recently_used_idle_model_makes_room(tmp_path: Path) -> None:
    async with served(settings_of(tmp_path, generation_max_models=2)) as (api, _):
        await load(api, SD)
        await load(api, XL)
        # Used after XL was loaded: XL is now the least recently used.
        assert (await api.post("/api/generate", json={**QUICK, "model": SD})).status_code == 200
        await load(api, COPY)
        assert await loaded_names(api) == {SD, COPY}
        # A request for the evicted one loads it again, evicting the next in line (SD).
        assert (await api.post("/api/generate", json={**QUICK, "model": XL})).status_code == 200
        assert await loaded_names(api) == {COPY, XL}


async def test_a_memory_budget_evicts_as_a_count_does(tmp_path: Path) -> None:
    async with served(settings_of(tmp_path, generation_max_models=0)) as (api, _):
        size = (await load(api, SD))["memory_bytes"]
    # Room for one tiny model and a half: a second load evicts the first.
    budget = {"generation_max_models": 0, "generation_memory_gb": 1.5 * size / 1024**3}
    async with served(settings_of(tmp_path / "budget", **budget)) as (api, _):
        await load(api, SD)
        await load(api, COPY)
        assert await loaded_names(api) == {COPY}


async def test_a_request_for_a_model_not_loaded_loads_it_saying_so(tmp_path: Path) -> None:
    async with served(settings_of(tmp_path)) as (api, _):
        answer = await api.post("/api/generate/stream", json={**QUICK, "model": XL})
        assert answer.status_code == 200, answer.text
        events = list(sse_events(answer))
        names = [name for name, _ in events]
        assert names.index("loading") < names.index("started")
        assert next(data for name, data in events if name == "loading")["model"] == XL
        assert names[-1] == "result"
        # Loaded now: the next request's stream has no `loading`.
        again = await api.post("/api/generate/stream", json={**QUICK, "model": XL})
        assert "loading" not in [name for name, _ in sse_events(again)]


async def test_refused_when_configured_not_to_load(tmp_path: Path) -> None:
    async with served(settings_of(tmp_path, generation_on_unloaded="refuse")) as (api, _):
        refused = await api.post("/api/generate", json=QUICK)
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["details"]["field"] == "model" and SD in error["message"]
        await load(api, SD)
        assert (await api.post("/api/generate", json=QUICK)).status_code == 200


class HeldEngine(DiffusersEngine):
    """Holds each call after its first step until the test lets it go."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.held = threading.Event()
        self.go = threading.Event()

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        def hold(items: Any) -> None:  # on the pipeline's thread
            progress(items)
            self.held.set()
            assert self.go.wait(WAIT), "the test never let the call go"

        return await super().generate(call, hold, cancelled)


async def test_a_model_running_a_call_is_neither_evicted_nor_unloaded(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)  # one model at a time
    engine = HeldEngine.from_settings(settings)
    assert isinstance(engine, HeldEngine)
    async with served(settings, engine) as (api, _):
        call = asyncio.create_task(api.post("/api/generate", json=QUICK))
        try:
            assert await asyncio.to_thread(engine.held.wait, WAIT)
            full = await api.post(f"/api/models/{XL}/load")
            assert full.status_code == 503, full.text
            assert full.json()["error"]["details"]["busy"] == [SD]
            assert "retry-after" in full.headers
            busy = await api.post(f"/api/models/{SD}/unload")
            assert busy.status_code == 409, busy.text
            assert "running a call" in busy.json()["error"]["message"]
        finally:
            engine.go.set()
        assert (await call).status_code == 200
        await load(api, XL)  # idle now: it makes room
        assert await loaded_names(api) == {XL}


async def test_the_sdk_loads_and_unloads(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient("http://generation", transport=transport) as client:
            assert (await client.load_model(SD))["state"] == "loaded"
            assert (await client.unload_model(SD))["state"] == "not loaded"


async def test_health_stays_ready_when_the_default_model_made_room(tmp_path: Path) -> None:
    async with served(settings_of(tmp_path, generation_load="startup")) as (api, _):
        await load(api, SD)  # waits for the load the start began
        await load(api, XL)  # one model at a time: the default one goes
        assert await loaded_names(api) == {XL}
        health = (await api.get("/api/health")).json()
        assert health["status"] == "healthy" and health["detail"]["ready"] is True
        assert health["detail"]["state"] == "unloaded; loads on the next request"
