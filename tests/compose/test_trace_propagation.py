"""One `traceparent` sent to the gateway is continued by every process a job goes
through: the gateway, the job manager, the worker and the generation service each log it
(JSON logs: `trace_id`, a `span_id` of their own, `task_id` in the job), and the webhook
POST carries it. Real processes, each with its own log file; a real webhook receiver."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.core.tracing import parse_traceparent
from tests.jobs.helpers import submit, wait_for
from tests.support.servers import ServerProcess, start_server, start_worker
from tests.support.webhook_receiver import running_receiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
SECRET = "whsec_" + base64.b64encode(b"a test key of 32 bytes, or so...").decode()
WAIT = 60.0
ENV = {
    "EASEL_LOG_FORMAT": "json",
    "EASEL_LOG_LEVEL": "INFO",
    "EASEL_WEBHOOK_SECRET": SECRET,
    "EASEL_WEBHOOK_ALLOW_PRIVATE": "true",
}


@contextmanager
def split_pod(tmp: Path) -> Iterator[dict[str, ServerProcess]]:
    """Generation, the job manager (no worker of its own), a worker process and the
    gateway, each a process of its own."""
    with ExitStack() as stack:
        processes: dict[str, ServerProcess] = {}

        def started(name: str, process: ServerProcess) -> ServerProcess:
            stack.callback(process.stop)
            processes[name] = process
            return process

        generation = started("generation", start_server("generation", tmp, ENV))
        urls = {**ENV, "EASEL_GENERATION_URL": generation.url}
        jobs_env = {**urls, "EASEL_JOBS_IN_PROCESS_WORKER": "false"}
        jobs = started("job_manager", start_server("jobs", tmp, jobs_env))
        started("worker", start_worker(tmp, urls))
        started(
            "gateway", start_server("gateway", tmp, {**urls, "EASEL_JOB_MANAGER_URL": jobs.url})
        )
        yield processes


def json_lines(process: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for line in process.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def lines_of_trace(process: ServerProcess, *, until: str | None = None) -> list[dict[str, Any]]:
    """Its log lines in the trace; waits (the log is written by another process) until
    one says `until`, or there is one."""
    deadline = time.monotonic() + WAIT
    while True:
        lines = [line for line in json_lines(process) if line.get("trace_id") == TRACE_ID]
        if any(until in line["message"] for line in lines) if until else lines:
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{process.target} never logged the trace:\n{process.log()}")
        time.sleep(0.05)


def test_one_traceparent_reaches_every_process_and_the_webhook(tmp_path: Path) -> None:
    with running_receiver() as receiver, split_pod(tmp_path) as pod:
        with httpx.Client(base_url=pod["gateway"].url, timeout=60) as api:
            body = {"prompt": "x", "steps": 2, "webhook": {"url": receiver.url}}
            task_id = submit(api, body, traceparent=INCOMING, tracestate="vendor=kept")
            wait_for(api, task_id, "done")
        webhook = receiver.wait_for(1, wait=WAIT)[0][0]
        logged = {
            "gateway": lines_of_trace(pod["gateway"]),
            "job_manager": lines_of_trace(pod["job_manager"]),
            "worker": lines_of_trace(pod["worker"], until="delivered"),
            "generation": lines_of_trace(pod["generation"]),
        }

    # Each process is a span of its own in the one trace.
    spans = {name: {line["span_id"] for line in lines} for name, lines in logged.items()}
    assert all(spans.values())
    all_spans = [span for found in spans.values() for span in found]
    assert len(all_spans) == len(set(all_spans)), spans
    assert "00f067aa0ba902b7" not in all_spans  # the client's span is the parent, not ours

    (submitted,) = [line for line in logged["gateway"] if line.get("path") == "/api/generate/async"]
    assert submitted["service"] == "gateway" and submitted["status"] == 202
    manager_access = [line for line in logged["job_manager"] if line["logger"] == "easel.access"]
    assert any(
        line["route"] == "/api/generate/async" and line.get("task_id") == task_id
        for line in manager_access
    ), manager_access
    worker_lines = logged["worker"]
    assert {line["service"] for line in worker_lines} == {"worker"}
    assert all(line["task_id"] == task_id for line in worker_lines)
    assert any(line["message"].startswith(f"job {task_id} started") for line in worker_lines)
    streamed = [
        line for line in logged["generation"] if line.get("route") == "/api/generate/stream"
    ]
    assert streamed and streamed[0]["service"] == "generation"

    # The webhook POST names the delivery's span (a worker log line) as its parent.
    parsed = parse_traceparent(webhook["traceparent"])
    assert parsed is not None
    trace_id, parent_id, _ = parsed
    assert trace_id == TRACE_ID
    (delivered,) = [line for line in worker_lines if "delivered" in line["message"]]
    assert parent_id == delivered["span_id"]
    assert webhook["tracestate"] == "vendor=kept"
    assert webhook["user-agent"].startswith("easel/")


@pytest.mark.parametrize("traceparent", ["garbage", f"00-{'0' * 32}-00f067aa0ba902b7-01"])
def test_an_invalid_traceparent_starts_a_new_trace(tmp_path: Path, traceparent: str) -> None:
    server = start_server("all", tmp_path, {"EASEL_LOG_FORMAT": "json", "EASEL_LOG_LEVEL": "INFO"})
    try:
        response = httpx.get(
            f"{server.url}/api/jobs", headers={"traceparent": traceparent, "x-request-id": "bad"}
        )
        assert response.status_code == 200
        deadline = time.monotonic() + WAIT
        while len(lines := [x for x in json_lines(server) if x.get("request_id") == "bad"]) < 2:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    finally:
        server.stop()
    # The gateway and the in-process job manager: one new trace, not the invalid one.
    assert {line["service"] for line in lines} == {"gateway", "job_manager"}
    (trace_id,) = {line["trace_id"] for line in lines}
    assert trace_id != "0" * 32 and len(trace_id) == 32
