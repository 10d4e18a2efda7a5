"""Pure-ASGI middleware shared by every app (no BaseHTTPMiddleware: it buffers and is slow).

- `RequestEdgeMiddleware`: request id in and out, the request's trace span (W3C
  `traceparent` continued or started, `easel.core.tracing`) and service for every log line
  under it, one log line and metrics per request (health polls at DEBUG; a client that left
  early is said so on that line, not as an error), and the JSON envelope for anything
  unexpected.
- `BodyLimitMiddleware`: 413 for bodies over the limit, by Content-Length or while streaming.
- `SecurityHeadersMiddleware`: the browser-facing headers the gateway adds to every response.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from easel.core.errors import PayloadTooLarge, error_body
from easel.core.metrics import HttpMetrics
from easel.core.request_context import (
    REQUEST_ID_HEADER,
    accept_or_create,
    request_id_var,
    service_var,
    task_id_var,
)
from easel.core.tracing import TRACEPARENT, TRACESTATE, at_edge, trace_var

access_log = logging.getLogger("easel.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


_REQUEST_ID = REQUEST_ID_HEADER.encode()
_TRACEPARENT = TRACEPARENT.encode()
_TRACESTATE = TRACESTATE.encode()


def _edge_headers(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """The request id, traceparent and tracestate a request came with, in one pass over
    its headers; every tracestate, as one (how W3C says to read a repeated list header)."""
    request_id = traceparent = None
    states: list[str] = []
    for key, value in scope.get("headers", ()):
        if key == _REQUEST_ID and request_id is None:
            request_id = value.decode("latin-1")
        elif key == _TRACEPARENT and traceparent is None:
            traceparent = value.decode("latin-1")
        elif key == _TRACESTATE:
            states.append(value.decode("latin-1"))
    return request_id, traceparent, ",".join(states) if states else None


async def send_json_error(
    send: Send,
    status: int,
    body: dict[str, object],
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


# Polled by load balancers, supervisors and dashboards every few seconds: their access
# lines go to DEBUG, so that INFO shows requests people made.
QUIET_PATHS = frozenset({"/api/health", "/health", "/api/system/health", "/metrics"})

# nginx's status for "the client closed the connection before the answer".
CLIENT_CLOSED = 499


@dataclass
class _Exchange:
    """What the edge saw of one request, for its access line."""

    status: int = 500
    started: bool = False
    complete: bool = False
    client_gone: bool = False  # before the response was complete

    def saw_sent(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True

    def ended_by_client(self, exc: Exception) -> bool:
        """Whether `exc` only says that the client left: a send after the disconnect
        raises OSError (ASGI 2.4), reading its body raises ClientDisconnect."""
        return isinstance(exc, ClientDisconnect) or (self.client_gone and isinstance(exc, OSError))


class RequestEdgeMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        claimed_id, traceparent, tracestate = _edge_headers(scope)
        request_id = accept_or_create(claimed_id)
        token = request_id_var.set(request_id)
        trace = at_edge(traceparent, tracestate)
        trace_token = trace_var.set(trace)
        service_token = service_var.set(self.service)
        task_token = task_id_var.set(None)  # a job route sets it (`easel.jobs.app`)
        started = time.perf_counter()
        seen = _Exchange()

        async def receive_watching() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not seen.complete:
                seen.client_gone = True
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            try:
                await send(message)
            except OSError:
                seen.client_gone = True
                raise
            seen.saw_sent(message)

        try:
            await self.app(scope, receive_watching, send_with_id)
        except Exception as exc:
            if not seen.ended_by_client(exc):
                access_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                if not seen.started:
                    await _send_internal_error(send_with_id)
        finally:
            self._log(scope, seen, time.perf_counter() - started)
            task_id_var.reset(task_token)
            service_var.reset(service_token)
            trace_var.reset(trace_token)
            request_id_var.reset(token)

    def _log(self, scope: Scope, seen: _Exchange, elapsed: float) -> None:
        route = _route_template(scope)
        # A server may drop what is sent after a disconnect without a word (uvicorn):
        # the response then looks complete, but the client had left before.
        disconnected = seen.client_gone
        status = CLIENT_CLOSED if disconnected and not seen.started else seen.status
        if self.metrics is not None:
            self.metrics.observe(scope["method"], route, status, elapsed)
        level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
        access_log.log(
            level,
            "%s %s %s %s %.1fms%s",
            self.service,
            scope["method"],
            scope["path"],
            status,
            elapsed * 1000,
            " (client disconnected)" if disconnected else "",
            extra={
                "service": self.service,
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client_disconnected": disconnected,
            },
        )


async def _send_internal_error(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    payload = json.dumps(error_body("internal_error", "internal server error"))
    await send({"type": "http.response.body", "body": payload.encode()})


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parsing passes it through."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        mb = self.max_bytes / (1024 * 1024)
        return PayloadTooLarge(
            f"request body is larger than the limit of {mb:g} MB",
            details={"limit_bytes": self.max_bytes},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self._error().message)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        exc = self._error()
        await send_json_error(send, exc.status, error_body(exc.code, exc.message, exc.details))


def security_headers(frame_ancestors: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY" if frame_ancestors == "'none'" else b"SAMEORIGIN"),
        (b"content-security-policy", f"frame-ancestors {frame_ancestors}".encode()),
        (b"referrer-policy", b"no-referrer"),
    ]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = list(headers)
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
