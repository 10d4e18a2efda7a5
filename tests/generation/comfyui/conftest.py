"""Fixtures: a fake ComfyUI (in this process, restartable) and an easel stack using it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_comfyui import FakeComfyUI
from tests.support.servers import ServerProcess, start_server

# A weight-free workflow with its declaration beside it (NAME.easel.json), and one whose
# node class the server does not have.
INVERT = {
    "1": {"class_type": "EmptyImage", "_meta": {"title": "Canvas"},
          "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv"}},
}  # fmt: skip
INVERT_DECLARATION = {
    "description": "A solid colour, inverted.",
    "parameters": {
        "width": {"type": "int", "default": 64, "min": 1, "max": 512,
                  "targets": [{"title": "Canvas", "input": "width"}]},
        "height": {"type": "int", "default": 64, "min": 1, "max": 512,
                   "targets": [{"node": "1", "input": "height"}]},
        "color": {"type": "int", "default": 0, "min": 0, "max": 16777215,
                  "targets": [{"title": "Canvas", "input": "color"}]},
    },
}  # fmt: skip
MISSING_NODE = {
    "easel": {"parameters": {}},
    "1": {"class_type": "NoSuchNode", "_meta": {"title": "Exotic"}, "inputs": {}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
}


def write_workflows(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "invert.json").write_text(json.dumps(INVERT))
    (folder / "invert.easel.json").write_text(json.dumps(INVERT_DECLARATION))
    (folder / "missing-node.json").write_text(json.dumps(MISSING_NODE))
    return folder


def comfy_env(fake: FakeComfyUI, tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "EASEL_GENERATION_ENGINE": "comfyui",
        "EASEL_COMFYUI_API_URL": fake.url,
        "EASEL_WORKFLOWS_PATH": str(write_workflows(tmp / "workflows")),
        "EASEL_COMFYUI_POLL_INTERVAL": "0.1",
        "EASEL_COMFYUI_RECONNECT_BACKOFF": "0.05",
        "EASEL_COMFYUI_RECONNECT_MAX": "0.2",
        "EASEL_CONNECT_TIMEOUT": "2",
        "EASEL_BATCH_WINDOW_MS": "0",
        "EASEL_JOBS_HEARTBEAT": "0.1",
        "EASEL_JOBS_RETRY_BACKOFF": "0",
        **extra,
    }


@contextmanager
def running_fake() -> Iterator[FakeComfyUI]:
    """A fake ComfyUI server, stopped on leaving."""
    server = FakeComfyUI()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeComfyUI]:
    with running_fake() as server:
        yield server


@pytest.fixture(autouse=True)
def fake_defaults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test did to the fake's behaviour is undone after it."""
    yield
    if "fake" in request.fixturenames:
        server: FakeComfyUI = request.getfixturevalue("fake")
        server.fail_classes.clear()
        server.refuse_ws = False
        server.done_marker = True
        if server.is_up:
            server.release()


@pytest.fixture(scope="module")
def easel(fake: FakeComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The all-in-one server with the ComfyUI engine pointed at the fake."""
    tmp = tmp_path_factory.mktemp("comfyui")
    server = start_server("all", tmp, comfy_env(fake, tmp))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def api(easel: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=easel.url, timeout=30) as client:
        yield client


def generation_detail(api: httpx.Client) -> dict[str, Any]:
    body = api.get("/api/system/health", params={"deep": "true"}).json()
    return dict(body["services"]["generation"]["detail"])
