"""Job webhooks end to end: a real server process calls a real receiver over loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from easel.jobs.webhooks import verify
from tests.jobs.helpers import submit, wait_for
from tests.support.servers import ServerProcess, start_server
from tests.support.webhook_receiver import running_receiver

SECRET = "whsec_" + base64.b64encode(b"a test key of 32 bytes, or so...").decode()
WAIT = 30.0


@contextmanager
def running_server(tmp: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    server: ServerProcess = start_server("all", tmp, env)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client
    finally:
        server.stop()


def refused(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/generate/async", json=body)
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_done_webhook_is_signed_and_retried_after_a_500(tmp_path: Path) -> None:
    env = {
        "EASEL_WEBHOOK_SECRET": SECRET,
        "EASEL_WEBHOOK_ALLOW_PRIVATE": "true",
        "EASEL_WEBHOOK_BACKOFF": "0.05",
    }
    with running_receiver(fail_first=True) as receiver, running_server(tmp_path, env) as api:
        task_id = submit(api, {"prompt": "x", "steps": 2, "webhook": {"url": receiver.url}})
        wait_for(api, task_id, "done")
        (first, first_body), (second, second_body) = receiver.wait_for(2)
    assert first_body == second_body
    assert first["webhook-id"] == second["webhook-id"]
    for headers, body in ((first, first_body), (second, second_body)):
        assert headers["content-type"] == "application/json"
        assert verify(SECRET, headers["webhook-id"], headers["webhook-timestamp"], body,
                      headers["webhook-signature"])  # fmt: skip
    sent = json.loads(second_body)
    assert sent["type"] == "job.done"
    assert sent["data"]["task_id"] == task_id and sent["data"]["status"] == "done"
    images = sent["data"]["result"]["images"]
    assert images and all("sha256" in image and "image" not in image for image in images)
    assert len(receiver.seen) == 2  # 200 ends it: no third delivery


def test_private_urls_are_refused_by_default(tmp_path: Path) -> None:
    with running_server(tmp_path, {"EASEL_WEBHOOK_SECRET": SECRET}) as api:
        for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "ftp://93.184.216.34/"):
            error = refused(api, {"prompt": "x", "steps": 2, "webhook": {"url": url}})
            assert [d["field"] for d in error["details"]] == ["webhook.url"], error


def test_webhooks_need_a_secret_and_known_events(api: httpx.Client) -> None:
    # The shared stacks run without EASEL_WEBHOOK_SECRET.
    error = refused(api, {"prompt": "x", "webhook": {"url": "http://93.184.216.34/"}})
    assert [d["field"] for d in error["details"]] == ["webhook"], error
    assert "EASEL_WEBHOOK_SECRET" in error["message"]
    hook = {"url": "http://93.184.216.34/", "events": ["done", "finished"]}
    error = refused(api, {"prompt": "x", "webhook": hook})
    assert [d["field"] for d in error["details"]] == ["webhook.events.1"], error
