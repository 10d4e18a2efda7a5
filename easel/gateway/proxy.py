"""Forward one request to its service, streaming both bodies; translate failures.

Transport failures become SPEC errors here, at the seam: refused -> 503, timeout -> 504,
broken answer -> 502. A service's own error envelope passes through untouched whatever its
status (a 502 `workflow_failed` keeps ComfyUI's node in its details, a 503 its Retry-After);
only a bare or unreadable 5xx, which says nothing a client can use, becomes `bad_gateway`,
and so does a service's refusal of the gateway's own internal credential (a token that
differs between them: the operator's to fix, not the client's 401).

The identity and credential headers a client sent are dropped; the upstream client signs
each request with the gateway's (`easel.core.clients.InternalAuth`).

Bodies stream both ways, except small ones of a declared length: those are read whole
(see `_WHOLE_MAX`), which spares a small request the async-iterator chain up and
Starlette's streaming response down (under uvicorn's ASGI 2.3, a task group and a
disconnect-listening task per request: the largest single cost in a profile of the
gateway on small requests, benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from easel.core.errors import (
    BadGateway,
    EaselError,
    GatewayTimeout,
    InternalUnauthorized,
    InvalidInput,
    ServiceUnavailable,
)
from easel.core.identity import CALLER_HEADER
from easel.core.internal_auth import INTERNAL_HEADER
from easel.core.request_context import REQUEST_ID_HEADER, current_request_id
from easel.core.tracing import TRACEPARENT, TRACESTATE
from easel.gateway.client_address import TrustedProxies
from easel.gateway.client_watch import ClientGone, ClientWatch
from easel.gateway.upstream import Upstream

log = logging.getLogger("easel.gateway.proxy")

# RFC 9110 7.6.1 hop-by-hop headers, plus those the client library sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Who the caller is and that the gateway vouches for it are the gateway's to say, never a
# client's: a client's own are dropped, whatever the upstream client then adds. The
# client's trace headers name its span: the service gets the gateway's instead, from the
# upstream client's trace hook (`easel.core.tracing.inject_trace`). The gateway writes
# the forwarding headers itself, from what it believes (`_request_headers`): a client's own
# would stand beside them as a second, unchecked answer.
_NOT_FORWARDED = HOP_BY_HOP | {
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
    CALLER_HEADER,
    INTERNAL_HEADER,
    TRACEPARENT,
    TRACESTATE,
}
_NOT_RETURNED = HOP_BY_HOP | {"date", "server", REQUEST_ID_HEADER}
_MAX_ERROR_BODY = 64 * 1024
# Bodies up to this size whose length is declared (Content-Length) are read whole: an
# answer before the client gets anything, under the same watch for a departing client as
# the wait for the headers, then sent in one message. Larger ones, and those of no declared
# length (server-sent events, chunked uploads), stream as they come.
_WHOLE_MAX = 64 * 1024
# What a request target may carry unescaped (RFC 3986 pchar, "/" and "%" of the escapes
# already there, "?" in a query); quote() adds letters, digits and "_.-~".
_PATH_SAFE = "/%:@!$&'()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?"


def _request_headers(request: Request, proxies: TrustedProxies) -> list[tuple[str, str]]:
    listed = {
        token.strip().lower()
        for token in request.headers.get("connection", "").split(",")
        if token.strip()
    }
    headers = [
        (key, value)
        for key, value in request.headers.items()
        if key not in _NOT_FORWARDED and key not in listed
    ]
    # Only the chain the gateway believes, the client first: an X-Forwarded-For that did not
    # come through a trusted proxy is the client's claim, not passed on as fact.
    headers.append(("x-forwarded-for", ", ".join(proxies.chain(request.scope))))
    headers.append(("x-forwarded-proto", request.scope.get("scheme", "http")))
    headers.append(("x-forwarded-host", request.headers.get("host", "")))
    headers.append((REQUEST_ID_HEADER, current_request_id() or ""))
    return headers


def _target(request: Request) -> str:
    """The path and query as the client sent them, still escaped, so the service decodes
    exactly what the gateway decoded. Re-escaping the decoded path instead would turn an
    escaped "/" (`%2F`) into a real one, and httpx refuses the control characters an
    escape may stand for (`%00`). A byte that no URL carries raw is escaped."""
    raw_path = request.scope.get("raw_path")
    if raw_path:
        path = quote(raw_path, safe=_PATH_SAFE)
    else:  # a server that gives no raw path: escape the decoded one, "%" included
        path = quote(request.scope["path"], safe=_PATH_SAFE.replace("%", ""))
    query = quote(request.scope.get("query_string", b""), safe=_QUERY_SAFE)
    return f"{path}?{query}" if query else path


def _response_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [
        (key, value)
        for key, value in response.headers.multi_items()
        if key.lower() not in _NOT_RETURNED
    ]


def translate_transport_error(service: str, exc: httpx.HTTPError) -> EaselError:
    details = {"service": service, "reason": type(exc).__name__}
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ServiceUnavailable(
            f"the {service} service is unreachable", details=details, headers={"Retry-After": "5"}
        )
    if isinstance(exc, httpx.PoolTimeout):
        return ServiceUnavailable(
            f"too many requests in flight to the {service} service",
            details=details,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, httpx.TimeoutException):
        return GatewayTimeout(f"the {service} service did not answer in time", details=details)
    return BadGateway(f"the {service} service broke off the exchange", details=details)


def _envelope_code(body: bytes) -> str | None:
    """The code of `{"error": {"code", "message", ...}, ...}`, what every easel service
    answers; None when `body` is no such envelope."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nothing a service would send
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    code = error.get("code")
    return code if isinstance(code, str) else None


def _declared_small(length: str | None) -> bool:
    return length is not None and length.isdigit() and int(length) <= _WHOLE_MAX


async def _read_capped(response: httpx.Response) -> bytes:
    body = b""
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > _MAX_ERROR_BODY:
            break
    await response.aclose()
    return body


def _credential_refused(service: str) -> BadGateway:
    log.error(
        "the %s service refused the gateway's internal credential: EASEL_INTERNAL_TOKEN "
        "differs between them (or their clocks, by more than EASEL_INTERNAL_TOKEN_MAX_AGE)",
        service,
    )
    return BadGateway(
        f"the {service} service refused the gateway's internal credential (a server "
        "misconfiguration: EASEL_INTERNAL_TOKEN differs between the gateway and the service)",
        details={
            "service": service,
            "upstream_status": 401,
            "upstream_code": InternalUnauthorized.code,
        },
    )


def _bad_gateway(service: str, status: int) -> BadGateway:
    return BadGateway(
        f"the {service} service failed (HTTP {status})",
        details={"service": service, "upstream_status": status},
    )


async def _stream_body(upstream: Upstream, response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # Headers are gone already: all we can do is cut the connection and say why.
        upstream.record(ok=False, started=time.monotonic(), detail=repr(exc))
        log.warning("%s broke off a response body: %r", upstream.name, exc)
        raise


async def _body_then_mark(request: Request, sent: asyncio.Event) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk
    sent.set()


class _Answer:
    """The service's response, and its body when it was small enough to read whole."""

    __slots__ = ("body", "response")

    def __init__(self, response: httpx.Response, body: bytes | None) -> None:
        self.response = response
        self.body = body


async def _exchange(client: httpx.AsyncClient, outgoing: httpx.Request) -> _Answer:
    response = await client.send(outgoing, stream=True)
    if not _declared_small(response.headers.get("content-length")):
        return _Answer(response, None)
    try:  # raw: the bytes go on as the service encoded them
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    return _Answer(response, body)


async def _request_content(
    request: Request, body_sent: asyncio.Event
) -> bytes | AsyncIterator[bytes] | None:
    if request.method in ("GET", "HEAD"):
        body_sent.set()
        return None
    if _declared_small(request.headers.get("content-length")):
        content = await request.body()  # a client leaving meanwhile: ClientDisconnect
        body_sent.set()
        return content
    return _body_then_mark(request, body_sent)


async def _send(request: Request, upstream: Upstream, proxies: TrustedProxies) -> _Answer:
    """Send upstream; if the client leaves first, abandon the exchange, which closes the
    upstream connection so the service sees the disconnect too (and can cancel work)."""
    body_sent = asyncio.Event()
    content = await _request_content(request, body_sent)
    try:
        outgoing = upstream.client.build_request(
            request.method,
            _target(request),
            headers=_request_headers(request, proxies),
            content=content,
        )
    except httpx.InvalidURL as exc:  # e.g. longer than httpx sends: no service can have it
        raise InvalidInput.field("path", f"cannot be forwarded: {exc}") from exc
    with ClientWatch(request, body_sent):
        return await _exchange(upstream.client, outgoing)


async def _read_failure(upstream: Upstream, answer: _Answer, started: float) -> Response:
    """A 5xx, or a 401: read whole (they are small) to tell what the client may see."""
    response = answer.response
    body = answer.body if answer.body is not None else await _read_capped(response)
    code = _envelope_code(body)
    status = response.status_code
    if status == 401:
        if code != InternalUnauthorized.code:  # the service's own 401: the client's to see
            upstream.record(ok=True, started=started)
            return Response(body, status, headers=dict(_response_headers(response)))
        upstream.record(ok=False, started=started, detail="internal credential refused")
        raise _credential_refused(upstream.name)
    upstream.record(ok=False, started=started, detail=f"HTTP {status}")
    if code is None:
        raise _bad_gateway(upstream.name, status)
    return Response(body, status, headers=dict(_response_headers(response)))


async def forward(request: Request, upstream: Upstream, proxies: TrustedProxies) -> Response:
    started = time.monotonic()
    try:
        answer = await _send(request, upstream, proxies)
    except ClientGone:
        # Nobody is listening; 499 (nginx's "client closed request") for the access log.
        return Response(status_code=499)
    except httpx.HTTPError as exc:
        upstream.record(ok=False, started=started, detail=repr(exc))
        raise translate_transport_error(upstream.name, exc) from exc

    response = answer.response
    if response.status_code >= 500 or response.status_code == 401:
        return await _read_failure(upstream, answer, started)

    upstream.record(ok=True, started=started)
    headers = [
        (key.lower().encode("latin-1"), value.encode("latin-1"))
        for key, value in _response_headers(response)
    ]
    if answer.body is not None:
        whole = Response(answer.body, response.status_code)
        whole.raw_headers = headers
        return whole
    streamed = StreamingResponse(
        _stream_body(upstream, response),
        status_code=response.status_code,
        background=BackgroundTask(response.aclose),
    )
    streamed.raw_headers = headers
    return streamed
