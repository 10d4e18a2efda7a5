"""Optional OpenTelemetry: spans for requests and calls, in the trace easel logs (the SDK's
in-memory exporter; no network). The otel extra is part of the test install (Makefile):
without it these tests fail, they do not skip."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from easel.core import telemetry
from easel.core.logging import build_handler
from easel.core.middleware import RequestEdgeMiddleware
from easel.core.tracing import TraceContext, current_trace, traced
from tests.support.downstream import serving_in_thread
from tests.support.servers import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture()
def traces() -> Iterator[telemetry.Telemetry]:
    traces = telemetry.setup(
        None, service="test", exporter=InMemorySpanExporter(), set_global=False
    )
    assert traces is not None
    try:
        yield traces
    finally:
        traces.shutdown()


@pytest.fixture()
def spans(traces: telemetry.Telemetry) -> InMemorySpanExporter:
    exporter = traces.exporter
    assert isinstance(exporter, InMemorySpanExporter)
    return exporter


def traced_app(traces: telemetry.Telemetry, downstream: str) -> tuple[FastAPI, list[str]]:
    """An instrumented app whose route calls another server through httpx."""
    logged: list[str] = []
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, str]:
        span = current_trace()
        assert span is not None
        logged.append(span.trace_id)
        async with httpx.AsyncClient() as client:
            await client.get(downstream)
        return {"span": span.span_id}

    app.add_middleware(RequestEdgeMiddleware, service="svc")
    traces.instrument_app(app)
    return app, logged


@pytest.fixture(scope="module")
def downstream() -> Iterator[str]:
    """A real server on loopback (httpx's instrumentation wraps its real transports),
    answering with the traceparent it got."""

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"traceparent": request.headers.get("traceparent")})

    port = free_port()
    with serving_in_thread(Starlette(routes=[Route("/", echo)]), port):
        yield f"http://127.0.0.1:{port}/"


def trace_ids(exporter: InMemorySpanExporter) -> dict[str, str]:
    finished: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    return {span.name: f"{span.context.trace_id:032x}" for span in finished}


async def test_a_request_makes_spans_in_the_incoming_trace(
    traces: telemetry.Telemetry, spans: InMemorySpanExporter, downstream: str
) -> None:
    app, logged = traced_app(traces, downstream)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        answer = await c.get("/work", headers={"traceparent": INCOMING})
    assert answer.status_code == 200
    ids = trace_ids(spans)
    assert {"GET /work", "GET"} <= set(ids) and set(ids.values()) == {TRACE_ID}  # server, client
    assert logged == [TRACE_ID]
    # The edge adopted OpenTelemetry's server span: the log's span id is the exported one.
    server = next(s for s in spans.get_finished_spans() if s.name == "GET /work")
    assert answer.json()["span"] == f"{server.context.span_id:016x}"


async def test_without_an_incoming_trace_the_logs_name_the_trace_of_the_spans(
    traces: telemetry.Telemetry, spans: InMemorySpanExporter, downstream: str
) -> None:
    app, logged = traced_app(traces, downstream)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.get("/work")).status_code == 200
    ids = trace_ids(spans)
    assert len(set(ids.values())) == 1 and logged == list(set(ids.values()))


async def test_a_jobs_context_is_the_parent_of_the_calls_made_in_it(
    spans: InMemorySpanExporter, downstream: str
) -> None:
    job = TraceContext.new()
    stream = io.StringIO()
    handler = build_handler("json", stream)
    logging.getLogger("easel.test").addHandler(handler)
    try:
        with traced(job):
            logging.getLogger("easel.test").warning("running the job")
            async with httpx.AsyncClient() as client:
                sent = (await client.get(downstream)).json()["traceparent"]
    finally:
        logging.getLogger("easel.test").removeHandler(handler)
    assert sent.split("-")[1] == job.trace_id
    (client_span,) = spans.get_finished_spans()
    assert f"{client_span.context.trace_id:032x}" == job.trace_id
    assert client_span.parent is not None and f"{client_span.parent.span_id:016x}" == job.span_id
    assert json.loads(stream.getvalue())["trace_id"] == job.trace_id


def test_a_missing_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(telemetry.TelemetryUnavailable, match=r"pip install 'easel\[otel\]'"):
        telemetry.setup("http://127.0.0.1:4318/v1/traces", service="test")
    assert telemetry.setup(None, service="test") is None  # unset: nothing is imported
