"""The composition: which services the gateway runs in-process, in which order, and what
each service is given."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from easel.compose.apps import build_app, connector
from easel.compose.gateway import create_gateway
from easel.compose.services import SERVICES, dependency_order, service_named
from easel.compose.settings import EaselSettings
from easel.gateway.container import GatewayContainer


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EASEL_") or key.endswith("_SERVICE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_every_spelling_names_the_same_service() -> None:
    for typed in ("job_manager", "job-manager", "jobs"):
        assert service_named(typed).name == "job_manager"
    for typed in ("image_utils", "image-utils"):
        assert service_named(typed).name == "image_utils"
    with pytest.raises(KeyError):
        service_named("imagine")


def test_a_service_starts_after_the_ones_it_needs() -> None:
    order = [spec.name for spec in dependency_order(reversed(SERVICES))]
    assert order == ["generation", "segmentation", "image_utils", "job_manager"]


def test_each_service_is_built_with_its_own_settings(tmp_path: Path) -> None:
    settings = EaselSettings.load(data_dir=tmp_path / "data", api_title="pod")
    for spec in SERVICES:
        app = build_app(spec, settings)
        assert app.title == f"pod {spec.name}"


async def test_the_gateway_runs_in_process_only_services_without_a_url(tmp_path: Path) -> None:
    settings = EaselSettings.load(
        data_dir=tmp_path / "data",
        segmentation_url="http://127.0.0.1:1",
        generation_model="tiny-random",
        generation_load="lazy",
    )
    gateway = create_gateway(settings)
    async with gateway.router.lifespan_context(gateway):
        container = gateway.state.container
        assert isinstance(container, GatewayContainer)
        upstreams = container.upstreams
        assert list(upstreams) == ["generation", "segmentation", "image_utils", "job_manager"]
        assert upstreams["segmentation"].location == "http://127.0.0.1:1"
        assert all(upstreams[k].location == "in-process" for k in ("generation", "job_manager"))
        # The job manager's worker reached the gateway's own generation app: its health
        # names a worker, and the generation service answers in this process.
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            health = (await client.get("/api/system/health")).json()["services"]
    assert health["job_manager"]["detail"]["worker"]
    assert health["generation"]["status"] == "healthy"
    assert health["segmentation"]["status"] == "unhealthy"


async def test_a_service_without_a_url_is_reached_in_this_process(tmp_path: Path) -> None:
    from contextlib import AsyncExitStack

    settings = EaselSettings.load(data_dir=tmp_path / "data")
    async with AsyncExitStack() as stack:
        client = await connector(service_named("image-utils"), settings)(stack)
        answer = (await client.get("/api/health")).json()
    assert answer["service"] == "image_utils" and answer["status"] == "healthy"
    remote = EaselSettings.load(image_utils_url="http://127.0.0.1:1")
    async with AsyncExitStack() as stack:
        client = await connector(service_named("image_utils"), remote)(stack)
        assert str(client.base_url) == "http://127.0.0.1:1"
