"""Offline start-up: a hub model missing from the cache is said once, in one line, and later
requests get the same answer at once; health says `loading` while a model loads.

The hub here is a loopback port nobody listens on: a real connect that is refused, as on
a machine without a network (this one has none either), whatever machine runs the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.compose.settings import EaselSettings
from easel.generation.app import create_app
from easel.generation.engines.diffusers import DiffusersEngine
from easel.generation.engines.diffusers.hub import HubReach
from easel.generation.engines.diffusers.loading import LoadedModel, LoadOptions, load_model
from easel.generation.settings import GenerationSettings, ModelSpec

# Library warnings (warnings are errors in this process, not in a server's).
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:.*local_dir_use_symlinks.*"),
]

WAIT = 60.0
HUB_ID = "someorg/not-cached-model"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed on return: connects are refused


class CountingHub(HubReach):
    """The real probe, counted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            endpoint=f"http://127.0.0.1:{closed_port()}", timeout_s=2, recheck_s=3600, **kwargs
        )
        self.probes = 0
        real = self.connect

        def counted(address: tuple[str, int], timeout: float) -> object:
            self.probes += 1
            return real(address, timeout)

        self.connect = counted


def settings_for(tmp_path: Path, model: str, **more: Any) -> GenerationSettings:
    settings = EaselSettings.load(
        data_dir=tmp_path / "data",
        generation_model=model,
        generation_models={"offline": {"source": HUB_ID, "family": "sd"}},
        **more,
    ).of("generation")
    assert isinstance(settings, GenerationSettings)
    return settings


@asynccontextmanager
async def serving(
    settings: GenerationSettings, engine: DiffusersEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://generation") as client:
            yield client


async def health_until(client: httpx.AsyncClient, check: Any) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + WAIT
    while asyncio.get_running_loop().time() < deadline:
        body = (await client.get("/api/health")).json()
        if check(body):
            return dict(body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"health never got there: {body}")


async def test_a_hub_model_missing_offline_is_one_line_once_then_an_instant_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for(tmp_path, "offline")
    hub = CountingHub()
    engine = DiffusersEngine.from_settings(settings)
    engine.options = dataclasses.replace(engine.options, hub=hub)
    async with serving(settings, engine) as client:
        health = await health_until(client, lambda b: b["detail"]["last_error"])
        message = health["detail"]["last_error"]
        for _ in range(2):
            answer = await client.post("/api/generate", json={"prompt": "x"})
            assert answer.status_code == 503
            assert answer.json()["error"]["message"] == message
    assert hub.probes == 1, "the hub was asked again"
    assert "'offline'" in message and HUB_ID in message and "unreachable" in message
    assert "\n" not in message
    said = [r for r in caplog.records if "not in the local cache" in r.getMessage()]
    assert [r.getMessage() for r in said] == [message]
    assert [r for r in caplog.records if r.exc_info] == []


async def test_health_says_loading_while_the_model_loads(tmp_path: Path) -> None:
    release = threading.Event()

    def held_load(name: str, spec: ModelSpec, options: LoadOptions) -> LoadedModel:
        release.wait(WAIT)
        return load_model(name, spec, options)

    settings = settings_for(tmp_path, "tiny-random")
    engine = DiffusersEngine.from_settings(settings)
    engine.loader = held_load
    try:
        async with serving(settings, engine) as client:
            loading = (await client.get("/api/health")).json()
            legacy = (await client.get("/health")).json()
            release.set()
            ready = await health_until(client, lambda b: b["status"] != "loading")
    finally:
        release.set()
    assert loading["status"] == "loading"
    assert loading["detail"]["state"] == "loading"
    assert loading["detail"]["models_loading"] == ["tiny-random"]
    assert legacy["status"] == "degraded"  # the first version's vocabulary
    assert ready["status"] == "healthy"
