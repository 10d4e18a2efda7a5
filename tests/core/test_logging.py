"""One log line per request, as text or JSON, carrying the request id."""

from __future__ import annotations

import json
import time

import httpx

from tests.support.servers import start_server


def test_json_access_log_line_per_request(tmp_path) -> None:
    server = start_server(
        "all", tmp_path, env={"EASEL_LOG_FORMAT": "json", "EASEL_LOG_LEVEL": "INFO"}
    )
    try:
        httpx.post(
            f"{server.url}/api/image-utils/crop", json={}, headers={"X-Request-ID": "log-me"}
        )
        lines: list[dict] = []
        for _ in range(100):  # the log is written by another process: wait for it
            lines = [
                json.loads(line)
                for line in server.log().splitlines()
                if line.startswith("{") and '"log-me"' in line
            ]
            if len(lines) >= 2:
                break
            time.sleep(0.05)
    finally:
        server.stop()
    by_service = {line["service"]: line for line in lines}
    gateway = by_service["gateway"]
    assert gateway["request_id"] == "log-me"
    assert gateway["status"] == 422
    assert gateway["method"] == "POST"
    assert gateway["route"] == "/api/image-utils/{rest:path}"
    assert gateway["duration_ms"] >= 0
    assert gateway["logger"] == "easel.access"
    # The in-process service logs the same request under the same id.
    assert by_service["image_utils"]["route"] == "/api/image-utils/crop"
