"""W3C trace context: parsing, continuing and starting traces, the edge, outgoing calls
and log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from easel.core.clients import in_process_client
from easel.core.logging import build_handler
from easel.core.middleware import RequestEdgeMiddleware
from easel.core.request_context import task_scope
from easel.core.tracing import (
    TraceContext,
    at_edge,
    clean_tracestate,
    continued,
    current_trace,
    parse_traceparent,
    trace_headers,
    traced,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"


def test_a_valid_traceparent_parses() -> None:
    assert parse_traceparent(VALID) == (TRACE_ID, PARENT_ID, "01")
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-00") == (TRACE_ID, PARENT_ID, "00")
    # A later version may add fields; its first four read as version 00.
    assert parse_traceparent(f"cc-{TRACE_ID}-{PARENT_ID}-01-what-comes") == (
        TRACE_ID,
        PARENT_ID,
        "01",
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "nonsense",
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is never valid
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # ids are lowercase hex
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",  # 31 hex digits
        f"00-{TRACE_ID}-{PARENT_ID}0-01",  # 17 hex digits
        f"00-{TRACE_ID}-{PARENT_ID}-1",  # one-digit flags
        f"00-{TRACE_ID}-{PARENT_ID}-zz",
        f"0-{TRACE_ID}-{PARENT_ID}-01",
        f"00_{TRACE_ID}_{PARENT_ID}_01",
    ],
)
def test_invalid_traceparents_are_refused(value: str | None) -> None:
    assert parse_traceparent(value) is None
    assert continued(value, "vendor=kept") is None


def test_continuing_keeps_the_trace_and_flags_with_a_new_span() -> None:
    span = continued(VALID, "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")
    assert span is not None
    assert span.trace_id == TRACE_ID and span.flags == "01"
    assert span.span_id != PARENT_ID and len(span.span_id) == 16
    assert span.tracestate == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert parse_traceparent(span.traceparent) == (TRACE_ID, span.span_id, "01")
    child = span.child()
    assert child.trace_id == TRACE_ID and child.span_id != span.span_id


def test_a_new_trace_is_valid_and_random() -> None:
    first, second = TraceContext.new(), TraceContext.new()
    assert parse_traceparent(first.traceparent) is not None
    assert first.trace_id != second.trace_id


def test_tracestate_is_bounded_and_a_malformed_one_dropped() -> None:
    assert clean_tracestate(None) is None
    assert clean_tracestate("  ") is None
    assert clean_tracestate("a=1,,b=2") == "a=1,b=2"
    assert clean_tracestate("tenant@vendor=x") == "tenant@vendor=x"
    assert clean_tracestate("a=1,B=2") is None  # keys are lowercase
    assert clean_tracestate("a=1,novalue") is None
    assert clean_tracestate("a=x=y") is None
    many = ",".join(f"k{i}=v" for i in range(40))
    kept = clean_tracestate(many)
    assert kept is not None and len(kept.split(",")) == 32
    long = ",".join(f"k{i}={'v' * 100}" for i in range(10))
    kept = clean_tracestate(long)
    assert kept is not None and len(kept) <= 512
    assert long.startswith(kept)  # whole members dropped from the end


def test_the_edge_continues_a_valid_trace_or_starts_one() -> None:
    span = at_edge(VALID, "a=1")
    assert span.trace_id == TRACE_ID and span.span_id != PARENT_ID and span.tracestate == "a=1"
    fresh = at_edge("00-garbage", "a=1")
    assert fresh.trace_id != TRACE_ID and fresh.tracestate is None


async def test_outgoing_calls_carry_the_current_span_as_parent() -> None:
    seen: list[httpx.Headers] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(httpx.Headers([(k.decode(), v.decode()) for k, v in scope["headers"]]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    span = continued(VALID, "a=1")
    assert span is not None
    async with in_process_client(app, "svc") as client:
        await client.get("/", headers={"traceparent": "00-stale", "tracestate": "old=1"})
        with traced(span):
            assert trace_headers() == {"traceparent": span.traceparent, "tracestate": "a=1"}
            await client.get("/", headers={"traceparent": "00-stale", "tracestate": "old=1"})
            with traced(TraceContext.new()) as other:  # no tracestate: the stale one goes
                await client.get("/", headers={"tracestate": "old=1"})
        assert current_trace() is None
    outside, inside, nested = seen
    assert outside["traceparent"] == "00-stale"  # no trace: nothing changed
    assert inside["traceparent"] == f"00-{TRACE_ID}-{span.span_id}-01"
    assert inside["tracestate"] == "a=1"
    assert nested["traceparent"] == other.traceparent and "tracestate" not in nested


@pytest.fixture()
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = build_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_every_line_of_a_request_names_its_trace_span_and_service(
    json_lines: io.StringIO,
) -> None:
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, str]:
        with task_scope("job-7"):
            logging.getLogger("easel.test").info("inside a job")
        logging.getLogger("easel.test").info("after the job")
        span = current_trace()
        assert span is not None
        return {"span": span.span_id}

    edge = RequestEdgeMiddleware(app, service="svc")
    async with in_process_client(edge, "svc") as client:
        answer = await client.get("/work", headers={"traceparent": VALID, "x-request-id": "r1"})
        fresh = await client.get("/work")
    span_id = answer.json()["span"]
    lines = [line for line in lines_of(json_lines) if line.get("request_id") == "r1"]
    job_line, after, access = lines
    for line in lines:
        assert line["trace_id"] == TRACE_ID and line["span_id"] == span_id
        assert line["service"] == "svc"
    assert job_line["task_id"] == "job-7" and "task_id" not in after
    assert access["logger"] == "easel.access"
    # Without a traceparent the edge starts a trace: its lines name it all the same.
    started = [line for line in lines_of(json_lines) if line.get("span_id") == fresh.json()["span"]]
    assert len(started) == 3 and started[0]["trace_id"] != TRACE_ID
    assert len({line["trace_id"] for line in started}) == 1
