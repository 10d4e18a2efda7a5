"""Cancel and disconnect stop the pipeline at the next step and free the slot.

A long request (150 steps of the tiny model at 512 px, many seconds here) is stopped
early; steps are counted by the service itself (`queue.steps_run` in its health).
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.generation.helpers import (
    WAIT,
    generate,
    generation_state,
    sse_events,
    wait_until_idle,
    wait_until_running,
)

# Long enough (seconds) that a cancel or a kill always lands mid-run.
LONG = {"prompt": "a long one", "steps": 150, "width": 512, "height": 512, "seed": 1}


def test_explicit_cancel_of_a_running_stream_stops_within_one_step(api: httpx.Client) -> None:
    wait_until_idle(api)
    start = generation_state(api)["queue"]["steps_run"]
    names = []
    with api.stream("POST", "/api/generate/stream", json=LONG, timeout=WAIT) as response:
        for name, data in sse_events(response):
            names.append(name)
            if name == "queued":
                request_id = data["request_id"]
            if name == "progress" and data["step"] == 2:
                answer = api.post(f"/api/generate/requests/{request_id}/cancel")
                assert answer.json() == {"request_id": request_id, "cancelled": True}
                at_cancel = generation_state(api)["queue"]["steps_run"]
    assert names[-1] == "cancelled"
    state = wait_until_idle(api)
    assert state["queue"]["steps_run"] - at_cancel <= 1, "ran on after the cancel"
    assert state["queue"]["last_call"]["interrupted"] is True
    assert state["queue"]["steps_run"] - start < LONG["steps"]
    # The slot is free and the next request runs normally.
    assert generate(api, prompt="next", seed=2, steps=2)["images"]


def test_closing_the_stream_cancels(api: httpx.Client) -> None:
    wait_until_idle(api)
    start = generation_state(api)["queue"]["steps_run"]
    with api.stream("POST", "/api/generate/stream", json=LONG, timeout=WAIT) as response:
        for name, data in sse_events(response):
            if name == "progress" and data["step"] == 2:
                break  # leaving the block closes the connection
    state = wait_until_idle(api)
    assert state["queue"]["last_call"]["interrupted"] is True
    assert state["queue"]["steps_run"] - start < LONG["steps"]
    assert generate(api, prompt="next", seed=2, steps=2)["images"]


def test_disconnected_sync_client_cancels(api: httpx.Client, stack) -> None:
    wait_until_idle(api)
    start = generation_state(api)["queue"]["steps_run"]
    body = json.dumps(LONG).encode()
    # A raw socket, so that closing it is a real disconnect mid-request.
    with socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=WAIT) as sock:
        sock.sendall(
            b"POST /api/generate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_until_running(api, start)
    state = wait_until_idle(api)
    assert state["queue"]["last_call"]["interrupted"] is True
    assert state["queue"]["steps_run"] - start < LONG["steps"]
    assert generate(api, prompt="next", seed=2, steps=2)["images"]


def test_cancel_of_a_queued_request_means_it_never_starts(api: httpx.Client) -> None:
    wait_until_idle(api)
    waiting_body = {**LONG, "steps": 99}  # another step count: it cannot share the call
    names: list[str] = []
    with api.stream("POST", "/api/generate/stream", json=LONG, timeout=WAIT) as first:
        for name, data in sse_events(first):
            if name == "queued":
                first_id = data["request_id"]
            if name == "progress":
                break  # the first request is running; its stream stays open
        with api.stream("POST", "/api/generate/stream", json=waiting_body) as second:
            for name, data in sse_events(second):
                names.append(name)
                if name == "queued":
                    assert data["position"] == 0  # next in line, behind the running one
                    cancel = api.post(f"/api/generate/requests/{data['request_id']}/cancel")
                    assert cancel.status_code == 200
        api.post(f"/api/generate/requests/{first_id}/cancel")
    assert names == ["queued", "cancelled"]
    wait_until_idle(api)


def test_cancel_of_an_unknown_request_is_404(api: httpx.Client) -> None:
    response = api.post("/api/generate/requests/no-such-request/cancel")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.fixture()
def tiny_queue(tmp_path):
    from tests.support.servers import start_server

    server = start_server("all", tmp_path, env={"EASEL_GENERATION_MAX_PENDING": "1"})
    yield server
    server.stop()


def test_beyond_capacity_is_429_with_retry_after(tiny_queue) -> None:
    with httpx.Client(base_url=tiny_queue.url, timeout=WAIT) as api:
        with api.stream("POST", "/api/generate/stream", json=LONG) as running:
            for name, data in sse_events(running):
                if name == "queued":
                    request_id = data["request_id"]
                if name == "progress":
                    refused = api.post("/api/generate", json={"prompt": "one more"})
                    api.post(f"/api/generate/requests/{request_id}/cancel")
                    break
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "too_many_requests"
        wait_until_idle(api)
        assert api.post("/api/generate", json={"prompt": "now", "steps": 2}).status_code == 200
