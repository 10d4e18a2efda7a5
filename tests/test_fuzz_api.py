"""Schemathesis over the whole public API of a real all-in-one server (the tiny model),
read from its own `/openapi.json`: no 5xx, and every answer conforms to the document
(status, content type, headers, body schema; invalid input refused).

Bounded: a few examples per operation and generation mode, the server's generation limits
set low (2 steps, 128 px) so a generated request that does run costs little, and no
shrinking (every finding is kept, not minimised). Each finding is classified by its cause:
the exception the server logged for that request id, or what the request was; any finding
fails the test, with its cause and a curl line to replay it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.servers import Stack, running_stack

EXAMPLES = 25  # per operation and generation mode
CALL_TIMEOUT = 120.0  # one request; generous: the first one loads the tiny model
SERVER_ENV = {
    "EASEL_LOG_FORMAT": "json",
    "EASEL_LOG_LEVEL": "ERROR",
    "EASEL_MAX_STEPS": "2",
    "EASEL_MAX_SIDE": "128",
    "EASEL_MAX_NUM_IMAGES": "2",
    "EASEL_JOBS_MAX_QUEUED": "16",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Operations whose documented example this server refuses, and why.
REFUSED_EXAMPLES = {
    "POST /api/generate": "512x512 at 20 steps: over this server's limits (SERVER_ENV)",
    "POST /api/generate/stream": "the same request",
    "POST /api/generate/async": "the same request, with a webhook to a host that does not resolve",
}


@dataclass
class Finding:
    operation: str
    mode: str
    status: int
    checks: list[str]
    cause: str  # the logged exception, or the request's trait that explains it
    request: str  # curl, for a person to replay

    def line(self) -> str:
        return f"{self.operation} ({self.mode}) -> {self.status} {self.checks}: {self.cause}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("all-in-one", tmp_path_factory.mktemp("fuzz"), SERVER_ENV) as stack:
        yield stack


def _logged_causes(log: str) -> dict[str, str]:
    """request id -> the last line of the traceback the server logged for it."""
    causes: dict[str, str] = {}
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("request_id") and record.get("exc_info"):
            causes[record["request_id"]] = record["exc_info"].strip().splitlines()[-1]
    return causes


class Fuzzer:
    def __init__(self, server: Stack) -> None:
        self.server = server
        self.findings: list[tuple[Finding, str]] = []  # with the request id
        self.calls = 0
        self.example_statuses: dict[str, list[int]] = {}
        self.statuses: Counter[tuple[str, int]] = Counter()

    def check(self, case: Case, mode: str) -> None:
        request_id = uuid.uuid4().hex
        response = case.call(headers={"X-Request-ID": request_id}, timeout=CALL_TIMEOUT)
        self.calls += 1
        self.statuses[case.operation.label, response.status_code] += 1
        if mode == "example":
            self.example_statuses.setdefault(case.operation.label, []).append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, Failure) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            names = sorted({type(f).__name__ for f in failures})
            finding = Finding(
                operation=case.operation.label,
                mode=mode,
                status=response.status_code,
                checks=names,
                cause=" | ".join(f"{f.title}: {f.message.strip()[:200]}" for f in failures),
                request=case.as_curl_command(headers={"X-Request-ID": request_id}),
            )
            self.findings.append((finding, request_id))

    def run(self, operation: Any, mode: GenerationMode) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: keep every finding
            derandomize=True,  # the same requests every run: a finding is never luck
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Case) -> None:
            self.check(case, mode.value)

        try:
            fuzz()
        except Unsatisfiable:
            # Nothing to make invalid (an operation without parameters or body).
            assert mode is GenerationMode.NEGATIVE, operation.label

    def run_examples(self, operation: Any) -> None:
        for strategy in operation.get_strategies_from_examples():

            @settings(
                max_examples=1,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
            )
            @given(case=strategy)
            def example(case: Case) -> None:
                self.check(case, "example")

            example()

    def classify(self) -> list[Finding]:
        causes = _logged_causes(self.server.gateway.log())
        classified = []
        for finding, request_id in self.findings:
            if request_id in causes:
                finding.cause = causes[request_id]
            classified.append(finding)
        return classified


@pytest.mark.timeout(900)
def test_fuzz_the_public_api(server: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    fuzzer = Fuzzer(server)
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        fuzzer.run_examples(operation)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzzer.run(operation, mode)
        print(f"{operation.label}: {fuzzer.calls} requests by {time.monotonic() - started:.0f} s")
    findings = fuzzer.classify()
    elapsed = time.monotonic() - started
    report = "\n".join(f.line() for f in findings)
    answers = "\n".join(
        f"{op} {status}: {n}" for (op, status), n in sorted(fuzzer.statuses.items())
    )
    print(f"\n{fuzzer.calls} requests in {elapsed:.0f} s\n{answers}\n{len(findings)} findings")
    print(report)
    assert not findings, "\n\n".join(f"{f.line()}\n{f.request}" for f in findings)
    # The document's examples are real requests: each one this server can run succeeds.
    for label, statuses in fuzzer.example_statuses.items():
        if label not in REFUSED_EXAMPLES:
            assert statuses and all(200 <= s < 300 for s in statuses), (label, statuses)


QUICK = {"prompt": "a red square", "width": 64, "height": 64, "steps": 2, "seed": 3}
STRICT = [c for c in CHECKS if c is not negative_data_rejection]


def test_successful_answers_conform_to_the_document(server: Stack) -> None:
    """Random requests rarely get past validation of a generation; these real ones do, so
    the documented success bodies (the result, the job, the streams) are checked too."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")

    def call(label: str, **parts: Any) -> Any:
        operation = schema.find_operation_by_label(label)
        assert operation is not None, label
        if "body" in parts:
            parts.setdefault("media_type", "application/json")
        case = operation.Case(**parts)
        response = case.call(timeout=CALL_TIMEOUT)
        case.validate_response(response, checks=STRICT)
        assert 200 <= response.status_code < 300, (label, response.text[:500])
        return response

    assert call("POST /api/generate", body=QUICK).json()["images"]
    assert "event: result" in call("POST /api/generate/stream", body=QUICK).text
    form = call("POST /api/generate", body=QUICK, media_type="multipart/form-data").json()
    assert form["width"] == 64
    task_id = call("POST /api/generate/async", body=QUICK).json()["task_id"]
    ids = {"path_parameters": {"task_id": task_id}}
    deadline = time.monotonic() + 120
    while call("GET /api/generate/status/{task_id}", **ids).json()["status"] != "done":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    assert call("GET /api/generate/result/{task_id}", **ids).json()["images"][0]["sha256"]
    assert "event: result" in call("GET /api/generate/events/{task_id}", **ids).text
    call("POST /api/generate/cancel/{task_id}", **ids)
    call("GET /api/jobs", query={"status": "done"})
    call("POST /generate", body={"mode": "text-to-image", "prompt": "a red square"})
