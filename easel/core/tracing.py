"""W3C Trace Context (level 1): the trace a request belongs to, from the gateway to the
services, into the job it submits, through the worker to generation, and out in webhooks.

Each process hop is a span of its own: the edge (`RequestEdgeMiddleware`) takes a valid
incoming `traceparent` and continues its trace with a new span id, or starts a trace; code
below it reads `current_trace()`; outgoing calls send `traceparent` naming the current span
as their parent (`inject_trace`, an httpx request hook), with the `tracestate` received.
A job keeps the submitting request's `traceparent` (`Job.traceparent`), and the worker
continues it while it runs the job. JSON log lines carry `trace_id` and `span_id`.

When OpenTelemetry is on (`easel.core.telemetry`) it owns the spans: a `SpanBridge` lets
the edge adopt the span OpenTelemetry opened for the request, and lets a worker make a
job's stored context OpenTelemetry's parent, so both name one trace.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
VERSION = "00"  # what this code writes
SAMPLED = "01"
# The spec's limits for tracestate: at most 32 list members; a vendor passing it on may
# cut it to 512 characters, dropping whole members from the end.
MAX_TRACESTATE_MEMBERS = 32
MAX_TRACESTATE_LENGTH = 512

_HEX = re.compile(r"[0-9a-f]+")
# key=value: a lowercase key (`tenant@system` for multi-tenant vendors); a value of
# printable ASCII but "," and "=", not ending in a space.
_TRACESTATE_MEMBER = re.compile(
    r"[a-z0-9][a-z0-9_\-*/@]{0,255}="
    r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


def _lower_hex(value: str, length: int) -> bool:
    return len(value) == length and _HEX.fullmatch(value) is not None


@dataclass(frozen=True)
class TraceContext:
    """This hop's place in a trace: the trace id, this span's id, the flags, and the
    vendors' `tracestate` passed along untouched."""

    trace_id: str
    span_id: str
    flags: str = SAMPLED
    tracestate: str | None = None

    @classmethod
    def new(cls) -> TraceContext:
        """The first span of a new trace."""
        return cls(trace_id=secrets.token_hex(16), span_id=new_span_id())

    def child(self) -> TraceContext:
        """The next hop: same trace, flags and state, a new span id."""
        return replace(self, span_id=new_span_id())

    @property
    def traceparent(self) -> str:
        """This span as the parent of a call it makes."""
        return f"{VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"

    def headers(self) -> dict[str, str]:
        """The headers of a call made from this span."""
        headers = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            headers[TRACESTATE] = self.tracestate
        return headers


def new_span_id() -> str:
    span_id = secrets.token_hex(8)
    return span_id if span_id != "0" * 16 else new_span_id()


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent id, flags) of a valid `traceparent`, else None. Version 00 must be
    exactly four fields; a later version may add fields after them (read as 00); `ff` is
    never valid; ids are lowercase hex and not all zeros."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) < 4:
        return None
    version, trace_id, parent_id, flags = parts[:4]
    if not _lower_hex(version, 2) or version == "ff" or (version == VERSION and len(parts) != 4):
        return None
    if not (_lower_hex(trace_id, 32) and _lower_hex(parent_id, 16) and _lower_hex(flags, 2)):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


def clean_tracestate(value: str | None) -> str | None:
    """`tracestate` as passed on: well-formed `key=value` members only, at most 32 of them
    and 512 characters (members dropped from the end); None when nothing is left."""
    if not value:
        return None
    kept: list[str] = []
    length = -1  # the first member needs no comma
    for raw in value.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        if _TRACESTATE_MEMBER.fullmatch(member) is None:
            return None  # the spec: a malformed list is dropped whole
        if len(kept) == MAX_TRACESTATE_MEMBERS or length + 1 + len(member) > MAX_TRACESTATE_LENGTH:
            break
        kept.append(member)
        length += 1 + len(member)
    return ",".join(kept) or None


def continued(traceparent: str | None, tracestate: str | None = None) -> TraceContext | None:
    """The next span of the trace `traceparent` names; None when it is missing or invalid
    (its `tracestate` then means nothing either)."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    trace_id, _, flags = parsed
    return TraceContext(
        trace_id=trace_id,
        span_id=new_span_id(),
        flags=flags,
        tracestate=clean_tracestate(tracestate),
    )


class SpanBridge(Protocol):
    """How a tracing library (OpenTelemetry) and this context stay one trace."""

    def current(self) -> TraceContext | None:
        """The library's active span (the edge adopts it), if it has one."""
        ...

    def attach(self, context: TraceContext) -> object:
        """Make `context` the library's parent from now on; returns what `detach` takes."""
        ...

    def detach(self, token: object) -> None: ...


_bridge: SpanBridge | None = None


def set_bridge(bridge: SpanBridge | None) -> None:
    global _bridge  # one tracing library per process, set at start-up
    _bridge = bridge


def at_edge(traceparent: str | None, tracestate: str | None) -> TraceContext:
    """A request's span: the tracing library's (when on), else the incoming trace
    continued, else a new trace."""
    adopted = _bridge.current() if _bridge is not None else None
    if adopted is not None:
        return replace(adopted, tracestate=adopted.tracestate or clean_tracestate(tracestate))
    return continued(traceparent, tracestate) or TraceContext.new()


_trace: ContextVar[TraceContext | None] = ContextVar("easel_trace", default=None)
trace_var = _trace


def current_trace() -> TraceContext | None:
    return _trace.get()


@contextmanager
def traced(context: TraceContext) -> Iterator[TraceContext]:
    """Run the block as the span `context` (a job's run, a webhook delivery)."""
    token = _trace.set(context)
    bridged = _bridge.attach(context) if _bridge is not None else None
    try:
        yield context
    finally:
        if _bridge is not None:
            _bridge.detach(bridged)
        _trace.reset(token)


def trace_headers() -> dict[str, str]:
    """The trace headers of a call made now (none outside a trace)."""
    context = _trace.get()
    return context.headers() if context is not None else {}


async def inject_trace(request: httpx.Request) -> None:
    """An httpx request hook: the call carries the current span as its parent, replacing
    whatever trace headers it had (a proxied client's own)."""
    headers = trace_headers()
    if not headers:
        return
    request.headers[TRACEPARENT] = headers[TRACEPARENT]
    if TRACESTATE in headers:
        request.headers[TRACESTATE] = headers[TRACESTATE]
    elif TRACESTATE in request.headers:
        del request.headers[TRACESTATE]


def trace_hooks() -> dict[str, list[Any]]:
    """`event_hooks=` for an httpx client whose calls carry the trace."""
    return {"request": [inject_trace]}
