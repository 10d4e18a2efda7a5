"""Internal auth in split mode, real processes: with EASEL_INTERNAL_TOKEN set, each service
refuses a direct call without the credential (a forged X-Easel-Caller included), while the
same requests through the gateway work, and an async job runs to done in a worker process
of its own (worker -> generation signed too). A gateway holding another token gets 502.
All-in-one with a token works too: its in-process calls are signed like remote ones."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.core.identity import ALL_SCOPES, CALLER_HEADER, Caller
from easel.core.internal_auth import INTERNAL_HEADER
from tests.jobs.helpers import submit, wait_for
from tests.segmentation.scenes import make_scene
from tests.support.images import b64, noise_image
from tests.support.servers import (
    SPLIT_SERVICES,
    ServerProcess,
    Stack,
    start_server,
    start_stack,
    start_worker,
)
from tests.support.waiting import SLOW_MACHINE_TIMEOUT

TOKEN = "split-mode-test-token"
# What someone who can reach a service's port would send to pass for an admin.
FORGED = {
    CALLER_HEADER: Caller(name="root-key", scopes=ALL_SCOPES).to_header(),
    INTERNAL_HEADER: "v1.1700000000.00112233445566778899aabbccddeeff",
}
GENERATE = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2, "seed": 3}
# One request a service alone answers, per service: (method, path, JSON body).
REQUESTS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "generation": ("POST", "/api/generate", GENERATE),
    "segmentation": (
        "POST",
        "/api/smart-mask",
        {"image": b64(make_scene(7, 128).image), "points": [[64, 64]]},
    ),
    "image_utils": (
        "POST",
        "/api/image-utils/resize",
        {"image": b64(noise_image(32, 32)), "width": 16},
    ),
    "job_manager": ("GET", "/api/jobs", None),
}


@dataclass
class ClosedStack:
    stack: Stack
    worker: ServerProcess
    tmp: Path

    def service(self, name: str) -> ServerProcess:
        return self.stack.services[name]


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClosedStack]:
    tmp = tmp_path_factory.mktemp("closed-split")
    env = {"EASEL_INTERNAL_TOKEN": TOKEN, "EASEL_JOBS_IN_PROCESS_WORKER": "false"}
    stack = start_stack("split", tmp, env)
    try:
        # The only worker: jobs run here or not at all. It shares the job store (SQLite in
        # the same data dir) and calls the generation process by URL.
        generation = stack.services["generation"].url
        worker = start_worker(tmp, {**env, "EASEL_GENERATION_URL": generation})
    except BaseException:
        stack.stop()
        raise
    try:
        yield ClosedStack(stack, worker, tmp)
    finally:
        worker.stop()
        stack.stop()


def call(base: str, service: str, headers: dict[str, str] | None = None) -> httpx.Response:
    method, path, body = REQUESTS[service]
    return httpx.request(method, f"{base}{path}", json=body, headers=headers, timeout=120)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "internal_unauthorized", error
    assert error["details"]["header"] == "X-Easel-Internal"


@pytest.mark.parametrize("service", list(SPLIT_SERVICES))
def test_a_direct_call_without_the_credential_is_refused(closed: ClosedStack, service: str) -> None:
    url = closed.service(service).url
    assert_refused(call(url, service))
    assert_refused(call(url, service, FORGED))  # a forged identity does not get in either
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert_refused(httpx.get(f"{url}{path}", timeout=30))
    # Liveness stays open: the gateway's and the pod's health waits need it.
    assert httpx.get(f"{url}/api/health", timeout=30).status_code == 200


@pytest.mark.timeout(SLOW_MACHINE_TIMEOUT)
@pytest.mark.parametrize("service", list(SPLIT_SERVICES))
def test_the_same_request_through_the_gateway_works(closed: ClosedStack, service: str) -> None:
    # The client's forged headers are dropped at the gateway, not passed on.
    response = call(closed.stack.url, service, FORGED)
    assert response.status_code == 200, response.text


@pytest.mark.timeout(SLOW_MACHINE_TIMEOUT)
def test_an_async_job_runs_to_done_in_the_worker(closed: ClosedStack) -> None:
    with httpx.Client(base_url=closed.stack.url, timeout=120) as api:
        task_id = submit(api, GENERATE, **FORGED)
        view = wait_for(api, task_id, "done", "failed")
        assert view["status"] == "done", view
        result = api.get(f"/api/generate/result/{task_id}")
        assert result.status_code == 200, result.text
        assert len(result.json()["images"]) == 1
    assert task_id in closed.worker.log()  # the worker process ran it


def test_a_gateway_with_another_token_gets_a_bad_gateway(closed: ClosedStack) -> None:
    urls = {var: closed.service(name).url for name, (_, var) in SPLIT_SERVICES.items()}
    stranger = start_server("gateway", closed.tmp, {**urls, "EASEL_INTERNAL_TOKEN": "another"})
    try:
        response = call(stranger.url, "image_utils")
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["code"] == "bad_gateway" and "internal credential" in error["message"]
        assert error["details"]["upstream_code"] == "internal_unauthorized"
    finally:
        stranger.stop()


@pytest.mark.timeout(SLOW_MACHINE_TIMEOUT)
def test_all_in_one_with_a_token_signs_its_in_process_calls(tmp_path: Path) -> None:
    server = start_server("all", tmp_path, {"EASEL_INTERNAL_TOKEN": TOKEN})
    try:
        assert call(server.url, "image_utils", FORGED).status_code == 200
        with httpx.Client(base_url=server.url, timeout=120) as api:
            task_id = submit(api, GENERATE)  # the in-process worker -> in-process generation
            assert wait_for(api, task_id, "done", "failed")["status"] == "done"
    finally:
        server.stop()
