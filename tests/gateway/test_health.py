"""Aggregated health: probes, timeouts, a killed service, passive mode that never probes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.downstream import Downstream
from tests.support.servers import ServerProcess, Stack, running_stack, start_server


def test_gateway_liveness(api: httpx.Client) -> None:
    body = api.get("/api/health").json()
    assert body["status"] == "healthy"
    assert body["service"] == "gateway"
    assert body["version"]


def test_system_health_lists_every_service(api: httpx.Client, stack: Stack) -> None:
    response = api.get("/api/system/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    report = body["services"]["image_utils"]
    assert report["status"] == "healthy"
    assert report["probed"] is True
    assert report["latency_ms"] >= 0
    expected = "in-process" if stack.topology == "all-in-one" else stack.services["image_utils"].url
    assert report["location"] == expected


def test_first_version_health(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "gpu_available": False,  # this machine has no GPU
        "version": api.get("/api/health").json()["version"],
    }


def test_killed_services_turn_the_system_degraded_then_unhealthy(tmp_path) -> None:
    with running_stack("split", tmp_path, env={"EASEL_HEALTH_TIMEOUT": "1"}) as stack:
        assert httpx.get(f"{stack.url}/api/system/health").json()["status"] == "healthy"
        stack.services["image_utils"].kill()
        body = httpx.get(f"{stack.url}/api/system/health", timeout=10).json()
        assert body["services"]["image_utils"]["status"] == "unhealthy"
        assert "unreachable" in body["services"]["image_utils"]["detail"]["error"]
        assert body["services"]["generation"]["status"] == "healthy"
        assert body["status"] == "degraded"
        assert httpx.get(f"{stack.url}/health").json()["status"] == "healthy"

        for service in stack.services.values():
            service.kill()
        body = httpx.get(f"{stack.url}/api/system/health", timeout=10).json()
        assert body["status"] == "unhealthy"
        legacy = httpx.get(f"{stack.url}/health", timeout=10)
        assert legacy.status_code == 200
        assert legacy.json()["status"] == "degraded"


def test_hanging_service_is_unhealthy_after_its_health_timeout(
    downstream: Downstream, tmp_path
) -> None:
    downstream.health_delay = 5
    server = start_server(
        "gateway",
        tmp_path,
        env={"EASEL_IMAGE_UTILS_URL": downstream.url, "EASEL_HEALTH_TIMEOUT": "0.3"},
    )
    try:
        body = httpx.get(f"{server.url}/api/system/health", timeout=10).json()
        report = body["services"]["image_utils"]
        assert report["status"] == "unhealthy"
        assert report["detail"]["error"] == "no answer within 0.3 s"
    finally:
        downstream.health_delay = 0
        server.stop()


def health_probes_seen(service: ServerProcess) -> float:
    """How many times the service answered GET /api/health, from its own metrics."""
    text = httpx.get(f"{service.url}/metrics").text
    pattern = r'easel_http_requests_total\{[^}]*route="/api/health"[^}]*\} (\d+(?:\.\d+)?)'
    return sum(float(m) for m in re.findall(pattern, text))


@pytest.fixture()
def passive_stack(tmp_path) -> Iterator[Stack]:
    env = {"EASEL_IMAGE_UTILS_HEALTH_MODE": "passive", "EASEL_HEALTH_TIMEOUT": "1"}
    with running_stack("split", tmp_path, env=env) as stack:
        yield stack


def test_passive_mode_sends_no_probe(passive_stack: Stack) -> None:
    service = passive_stack.services["image_utils"]
    before = health_probes_seen(service)
    for _ in range(3):
        body = httpx.get(f"{passive_stack.url}/api/system/health").json()
        report = body["services"]["image_utils"]
        assert report["status"] == "unknown"
        assert report["probed"] is False
    assert body["status"] == "healthy"
    assert health_probes_seen(service) == before


def test_passive_mode_judges_by_recent_traffic(passive_stack: Stack) -> None:
    service = passive_stack.services["image_utils"]
    before = health_probes_seen(service)
    # A real request (even one the service rejects as invalid) shows it is alive.
    assert httpx.post(f"{passive_stack.url}/api/image-utils/resize", json={}).status_code == 422
    report = httpx.get(f"{passive_stack.url}/api/system/health").json()["services"]["image_utils"]
    assert report["status"] == "healthy"
    assert report["latency_ms"] > 0
    assert health_probes_seen(service) == before

    service.kill()
    assert httpx.post(f"{passive_stack.url}/api/image-utils/resize", json={}).status_code == 503
    body = httpx.get(f"{passive_stack.url}/api/system/health").json()
    assert body["services"]["image_utils"]["status"] == "unhealthy"
    assert body["status"] == "degraded"  # generation is still up


def test_deep_health_probes_passive_services(passive_stack: Stack) -> None:
    service = passive_stack.services["image_utils"]
    before = health_probes_seen(service)
    body = httpx.get(f"{passive_stack.url}/api/system/health", params={"deep": "true"}).json()
    assert body["services"]["image_utils"]["probed"] is True
    assert body["services"]["image_utils"]["status"] == "healthy"
    assert health_probes_seen(service) == before + 1
