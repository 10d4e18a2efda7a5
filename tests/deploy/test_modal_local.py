"""The Modal app's classes run here: each class's user class instantiated, its enter hooks
and ASGI factory run with the environment the app gives its containers (and the secret's
values), each served on loopback with uvicorn, and the gateway's API smoke run through
them: the tiny model, GrabCut, a local Redis."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis

from tests.deploy.modal_parts import import_app, registered
from tests.support.downstream import serving_in_thread
from tests.support.images import b64, noise_image
from tests.support.servers import free_port
from tests.support.waiting import SLOW_MACHINE_TIMEOUT, ProgressDeadline

# Library warnings (warnings are errors in this process, and the servers run in it).
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

KEY = "sk-modal-local-" + "x" * 24
ADMIN_KEY = "sk-modal-admin-" + "z" * 24
TOKEN = "internal-" + "y" * 32
# Started in this order: each one's URL answers before the services calling it start.
ORDER = ("Generation", "Segmentation", "ImageUtils", "JobManager", "ApiGateway")
KEYS = {
    "Generation": "generation",
    "Segmentation": "segmentation",
    "ImageUtils": "image_utils",
    "JobManager": "job_manager",
}


def _secret_values() -> dict[str, str]:
    """What the deployment's modal.Secret would hold."""
    return {
        "EASEL_API_KEYS": KEY,
        "EASEL_ADMIN_API_KEYS": ADMIN_KEY,
        "EASEL_INTERNAL_TOKEN": TOKEN,
        "EASEL_REDIS_URL": "redis://127.0.0.1:6379/0",
    }


def _deployer_values(tmp: Path, ports: dict[str, int], redis_prefix: str) -> dict[str, str]:
    """What the deployer sets where `modal deploy` runs (handed on to the containers)."""
    urls = {
        f"EASEL_{key.upper()}_URL": f"http://127.0.0.1:{ports[name]}" for name, key in KEYS.items()
    }
    return {
        **urls,
        "EASEL_DATA_DIR": str(tmp / "data"),
        "MODELS_PATH": str(tmp / "models"),
        "EASEL_RESULTS_DIR": str(tmp / "results"),
        "EASEL_JOBS_REDIS_PREFIX": redis_prefix,
        "EASEL_GENERATION_MODEL": "tiny-random",
        "EASEL_GENERATION_DEVICE": "cpu",
        "EASEL_SEGMENTATION_DEVICE": "cpu",
        "EASEL_SEGMENTATION_WORKERS": "1",
        "EASEL_LOG_FORMAT": "text",
    }


def _start(
    module: ModuleType, name: str, secret: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """One container: the class's environment and the secret, its enter hooks, its app."""
    cls = getattr(module, name)
    with monkeypatch.context() as container:
        for variable, value in {**registered(cls).environment, **secret}.items():
            container.setenv(variable, value)
        instance = cls._get_user_cls()()
        for hook in ("stage", "place"):  # the enter hooks, snapshot half first
            if hasattr(instance, hook):
                getattr(instance, hook)()
        return instance.serve()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One deployment for the module's tests (it takes seconds to start)."""
    prefix = f"easel-modal-test-{secrets.token_hex(4)}"
    ports = {name: free_port() for name in ORDER}
    tmp = tmp_path_factory.mktemp("modal")
    with pytest.MonkeyPatch.context() as monkeypatch, ExitStack() as stack:
        for variable, value in _deployer_values(tmp, ports, prefix).items():
            monkeypatch.setenv(variable, value)
        # The containers configure logging; in this process it would undo caplog's.
        monkeypatch.setattr("easel.compose.modal.runtime.configure_logging", lambda *a: None)
        module = import_app()
        secret = _secret_values()
        for name in ORDER:
            app = _start(module, name, secret, monkeypatch)
            stack.enter_context(serving_in_thread(app, ports[name]))
            _wait_until_up(f"http://127.0.0.1:{ports[name]}")
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def _wait_for_model(gateway: httpx.Client) -> None:
    deadline = ProgressDeadline(stall=120)
    while not deadline.expired():
        health = gateway.get("/api/system/health", params={"deep": "true"}).json()
        generation = health["services"]["generation"]
        if generation["status"] == "healthy":
            return
        deadline.observe(str(generation["detail"]))
        time.sleep(0.2)
    raise AssertionError(f"generation never became healthy: {generation}")


@pytest.mark.timeout(SLOW_MACHINE_TIMEOUT)
def test_the_gateway_api_smoke_runs_through_the_modal_classes(
    deployment: dict[str, str],
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=deployment["ApiGateway"], headers=headers, timeout=120) as api:
        assert api.get("/api/health").json()["status"] == "healthy"
        assert httpx.get(f"{deployment['ApiGateway']}/api/health").status_code == 200

        # Passive health: the scale-to-zero services are not probed (not woken).
        system = api.get("/api/system/health")
        assert system.status_code == 200
        services = system.json()["services"]
        for key in ("generation", "segmentation", "image_utils"):
            assert services[key]["mode"] == "passive"
            assert services[key]["probed"] is False, key
        assert services["job_manager"]["probed"] is True
        assert services["job_manager"]["status"] == "healthy"

        _wait_for_model(api)  # ?deep=true probes them all
        request = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 3}
        generated = api.post("/api/generate", json=request)
        assert generated.status_code == 200, generated.text
        assert len(generated.json()["images"]) == 1

        queued = api.post("/api/generate/async", json=request)
        assert queued.status_code == 202, queued.text
        task_id = queued.json()["task_id"]
        deadline = ProgressDeadline(stall=120)
        while not deadline.expired():
            status = api.get(f"/api/generate/status/{task_id}").json()
            if status["status"] in ("done", "failed", "cancelled"):
                break
            deadline.observe((status["status"], str(status.get("progress"))))
            time.sleep(0.1)
        assert status["status"] == "done", status
        result = api.get(f"/api/generate/result/{task_id}")
        assert result.status_code == 200
        assert len(result.json()["images"]) == 1

        image = noise_image(96, 64)
        mask = api.post("/api/smart-mask", json={"image": b64(image), "points": [[48, 32]]})
        assert mask.status_code == 200, mask.text
        assert mask.json()["model"] == "grabcut"

        resized = api.post("/api/image-utils/resize", json={"image": b64(image), "width": 48})
        assert resized.status_code == 200, resized.text

        # After real traffic, passive health reports it, still without probing.
        after = api.get("/api/system/health").json()["services"]
        assert after["generation"]["status"] == "healthy"
        assert after["generation"]["probed"] is False

        # The gateway's keys hold at the public entry point.
        assert httpx.get(f"{deployment['ApiGateway']}/api/system/health").status_code == 401


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("Generation", "POST", "/api/generate"),
        ("Segmentation", "POST", "/api/smart-mask"),
        ("ImageUtils", "POST", "/api/image-utils/resize"),
        ("JobManager", "GET", "/api/jobs"),
    ],
)
def test_a_service_called_without_the_internal_credential_is_refused(
    deployment: dict[str, str], service: str, method: str, path: str
) -> None:
    # With a valid API key, even: a service's own URL is public, and only the gateway
    # (and the job manager's workers) hold the credential.
    response = httpx.request(
        method, deployment[service] + path, json={}, headers={"X-API-Key": KEY}, timeout=30
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "internal_unauthorized"
