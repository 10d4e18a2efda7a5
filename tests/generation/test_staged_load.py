"""The model's load in two halves (Modal's enter hooks around a memory snapshot): the
weights read into memory first (`load_now(staging=True)`), put on their device after
(`place_staged`), on the real tiny pipeline; failures of either half recorded as a load in
the lifespan would be, so health says why and requests are refused with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.compose.settings import EaselSettings
from easel.generation.app import create_app
from easel.generation.engines.diffusers import DiffusersEngine
from easel.generation.engines.diffusers import engine as engine_module
from easel.generation.engines.diffusers.loading import LoadedModel, LoadOptions, staging_dtype
from easel.generation.settings import GenerationSettings, ModelSpec

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def engine_for(tmp_path: Path) -> tuple[GenerationSettings, DiffusersEngine]:
    settings = EaselSettings.load(
        data_dir=tmp_path / "data", generation_model="tiny-random", generation_device="cpu"
    ).of("generation")
    assert isinstance(settings, GenerationSettings)
    return settings, DiffusersEngine.from_settings(settings)


async def generate(settings: GenerationSettings, engine: DiffusersEngine) -> httpx.Response:
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://generation") as client:
            request = {"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 2}
            return await client.post("/api/generate", json=request, timeout=120)


async def test_staged_then_placed_it_serves(tmp_path: Path) -> None:
    settings, engine = engine_for(tmp_path)
    engine.load_now(staging=True)
    staged = engine.loaded["tiny-random"]
    assert staged.staged_for == "cpu"
    engine.place_staged()
    assert engine.loaded["tiny-random"] is staged
    assert staged.staged_for is None and staged.device == "cpu"
    answer = await generate(settings, engine)
    assert answer.status_code == 200, answer.text
    assert answer.json()["images"]


def test_placing_twice_or_without_staging_changes_nothing(tmp_path: Path) -> None:
    _, engine = engine_for(tmp_path)
    engine.place_staged()  # nothing staged
    assert engine.loaded == {}
    engine.load_now()  # the whole load: nothing left to place
    loaded = engine.loaded["tiny-random"]
    assert loaded.staged_for is None
    placed_after = loaded.load_seconds
    engine.place_staged()
    assert loaded.load_seconds == placed_after


async def test_a_failing_read_is_recorded_and_refused_with(tmp_path: Path) -> None:
    settings, engine = engine_for(tmp_path)

    staging: list[bool] = []

    def broken(name: str, spec: ModelSpec, options: LoadOptions) -> LoadedModel:
        staging.append(options.staging)
        raise RuntimeError("the Volume is empty")

    engine.loader = broken
    engine.load_now(staging=True)  # recorded, not raised: the container still serves
    assert engine.loaded == {}
    assert "the Volume is empty" in engine.errors["tiny-random"]
    engine.place_staged()
    answer = await generate(settings, engine)  # the lifespan tries again, whole
    assert staging[0] is True and not any(staging[1:])  # later tries are whole loads
    assert answer.status_code == 503, answer.text
    assert "the Volume is empty" in answer.json()["error"]["message"]


def test_a_failing_placement_is_recorded_and_drops_the_staged_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, engine = engine_for(tmp_path)
    engine.load_now(staging=True)

    def no_gpu(loaded: LoadedModel, options: LoadOptions) -> None:
        raise RuntimeError("CUDA error: no CUDA-capable device is detected")

    monkeypatch.setattr(engine_module, "place", no_gpu)
    engine.place_staged()
    assert "tiny-random" not in engine.loaded
    assert "no CUDA-capable device" in engine.errors["tiny-random"]


class FakeDtypes:
    bfloat16 = "bfloat16"


def test_the_staged_dtype_never_asks_the_gpu() -> None:
    torch: Any = FakeDtypes()  # no `cuda` attribute: asking it would fail the test
    assert staging_dtype("auto", "cuda", torch) == "bfloat16"
    assert staging_dtype("auto", "cpu", torch) is None
    assert staging_dtype("float16", "cuda", torch) is None
    assert staging_dtype("float32", "cuda", torch) is None
