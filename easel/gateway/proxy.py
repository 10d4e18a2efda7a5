"""Forward one request to its service, streaming both bodies; translate failures.

Transport failures become SPEC errors here, at the seam: refused -> 503, timeout -> 504,
broken answer -> 502. A service's own error envelope passes through untouched whatever its
status (a 502 `workflow_failed` keeps ComfyUI's node in its details, a 503 its Retry-After);
only a bare or unreadable 5xx, which says nothing a client can use, becomes `bad_gateway`,
and so does a service's refusal of the gateway's own internal credential (a token that
differs between them: the operator's to fix, not the client's 401).

The identity and credential headers a client sent are dropped; the upstream client signs
each request with the gateway's (`easel.core.clients.InternalAuth`).

It works on the ASGI scope, receive and send, below FastAPI's router
(`easel.gateway.dispatch`): on a small proxied request the router, Starlette's request and
response objects and httpx's request model had been a third of the gateway's CPU
(benchmarks/README.md, issue 22). What it sends goes through a `Sender`
(`easel.gateway.senders`).

Bodies stream both ways, except small ones of a declared length: those are read whole
(see `_WHOLE_MAX`), and the answer is sent in one message. A streamed answer (server-sent
events, large images) is watched for the client leaving, which closes the upstream
exchange so the service sees the disconnect too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from easel.core.errors import (
    BadGateway,
    EaselError,
    GatewayTimeout,
    InternalUnauthorized,
    ServiceUnavailable,
    error_response,
)
from easel.core.identity import CALLER_HEADER
from easel.core.internal_auth import INTERNAL_HEADER
from easel.core.request_context import REQUEST_ID_HEADER, current_request_id
from easel.core.tracing import TRACEPARENT, TRACESTATE
from easel.gateway.client_address import TrustedProxies
from easel.gateway.client_watch import ClientGone, ClientWatch
from easel.gateway.senders import Body, Headers, UpstreamAnswer
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
    "expect",  # the gateway has the body or streams it: no 100 Continue to wait for
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
_NOT_FORWARDED_BYTES = frozenset(name.encode() for name in _NOT_FORWARDED)
_NOT_RETURNED = frozenset(
    name.encode() for name in HOP_BY_HOP | {"date", "server", REQUEST_ID_HEADER}
)
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


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _request_headers(scope: Scope, proxies: TrustedProxies) -> Headers:
    connection = _header(scope, b"connection")
    listed = (
        {token.strip().lower() for token in connection.split(b",") if token.strip()}
        if connection
        else ()
    )
    headers = [
        (key, value)
        for key, value in scope["headers"]
        if key not in _NOT_FORWARDED_BYTES and key not in listed
    ]
    # Only the chain the gateway believes, the client first: an X-Forwarded-For that did not
    # come through a trusted proxy is the client's claim, not passed on as fact.
    headers.append((b"x-forwarded-for", ", ".join(proxies.chain(scope)).encode("latin-1")))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    headers.append((b"x-forwarded-host", _header(scope, b"host") or b""))
    headers.append((REQUEST_ID_HEADER.encode(), (current_request_id() or "").encode("latin-1")))
    return headers


def _target(scope: Scope) -> str:
    """The path and query as the client sent them, still escaped, so the service decodes
    exactly what the gateway decoded. Re-escaping the decoded path instead would turn an
    escaped "/" (`%2F`) into a real one, and a client refuses the control characters an
    escape may stand for (`%00`). A byte that no URL carries raw is escaped."""
    raw_path = scope.get("raw_path")
    if raw_path:
        path = quote(raw_path, safe=_PATH_SAFE)
    else:  # a server that gives no raw path: escape the decoded one, "%" included
        path = quote(scope["path"], safe=_PATH_SAFE.replace("%", ""))
    query = quote(scope.get("query_string", b""), safe=_QUERY_SAFE)
    return f"{path}?{query}" if query else path


def _response_headers(answer: UpstreamAnswer) -> Headers:
    return [(key, value) for key, value in answer.headers if key not in _NOT_RETURNED]


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


def _declared_small(length: bytes | None) -> bool:
    return length is not None and length.isdigit() and int(length) <= _WHOLE_MAX


def _length_of(headers: Headers) -> bytes | None:
    for key, value in headers:
        if key == b"content-length":
            return value
    return None


async def _read_capped(answer: UpstreamAnswer) -> bytes:
    body = b""
    async for chunk in answer.aiter_raw():
        body += chunk
        if len(body) > _MAX_ERROR_BODY:
            break
    await answer.aclose()
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


async def _body_of(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _streamed_body(receive: Receive, sent: asyncio.Event) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            break
    sent.set()


class _Answer:
    """The service's answer, and its body when it was small enough to read whole."""

    __slots__ = ("answer", "body")

    def __init__(self, answer: UpstreamAnswer, body: bytes | None) -> None:
        self.answer = answer
        self.body = body


async def _exchange(
    upstream: Upstream, method: str, target: str, headers: Headers, content: Body
) -> _Answer:
    answer = await upstream.sender.send(method, target, headers, content)
    if not _declared_small(_length_of(answer.headers)):
        return _Answer(answer, None)
    try:  # raw: the bytes go on as the service encoded them
        body = b"".join([chunk async for chunk in answer.aiter_raw()])
    finally:
        await answer.aclose()
    return _Answer(answer, body)


async def _request_content(scope: Scope, receive: Receive, body_sent: asyncio.Event) -> Body:
    if scope["method"] in ("GET", "HEAD"):
        body_sent.set()
        return None
    if _declared_small(_header(scope, b"content-length")):
        content = await _body_of(receive)  # a client leaving meanwhile: ClientDisconnect
        body_sent.set()
        return content
    return _streamed_body(receive, body_sent)


async def _send(
    scope: Scope, receive: Receive, upstream: Upstream, proxies: TrustedProxies
) -> _Answer:
    """Send upstream; if the client leaves first, abandon the exchange, which closes the
    upstream connection so the service sees the disconnect too (and can cancel work)."""
    body_sent = asyncio.Event()
    content = await _request_content(scope, receive, body_sent)
    headers = _request_headers(scope, proxies)
    with ClientWatch(receive, body_sent):
        return await _exchange(upstream, scope["method"], _target(scope), headers, content)


async def _send_whole(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_failure(upstream: Upstream, answer: _Answer, started: float, send: Send) -> None:
    """A 5xx, or a 401: read whole (they are small) to tell what the client may see."""
    response = answer.answer
    body = answer.body if answer.body is not None else await _read_capped(response)
    code = _envelope_code(body)
    status = response.status
    headers = [(k, v) for k, v in _response_headers(response) if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    if status == 401:
        if code != InternalUnauthorized.code:  # the service's own 401: the client's to see
            upstream.record(ok=True, started=started)
            await _send_whole(send, status, headers, body)
            return
        upstream.record(ok=False, started=started, detail="internal credential refused")
        raise _credential_refused(upstream.name)
    upstream.record(ok=False, started=started, detail=f"HTTP {status}")
    if code is None:
        raise _bad_gateway(upstream.name, status)
    await _send_whole(send, status, headers, body)


async def _stream_body(upstream: Upstream, answer: UpstreamAnswer, send: Send) -> None:
    try:
        async for chunk in answer.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.HTTPError as exc:
        # Headers are gone already: all we can do is cut the connection and say why.
        upstream.record(ok=False, started=time.monotonic(), detail=repr(exc))
        log.warning("%s broke off a response body: %r", upstream.name, exc)
        raise
    await send({"type": "http.response.body", "body": b""})


async def _relay(upstream: Upstream, answer: UpstreamAnswer, receive: Receive, send: Send) -> None:
    """Stream the answer's body; a client that leaves meanwhile ends it (ClientGone)."""
    sent = asyncio.Event()
    sent.set()  # the request body is in: the only message left is the disconnect
    try:
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": _response_headers(answer),
            }
        )
        with ClientWatch(receive, sent):
            await _stream_body(upstream, answer, send)
    finally:
        await answer.aclose()


async def _forward(
    scope: Scope, receive: Receive, send: Send, upstream: Upstream, proxies: TrustedProxies
) -> None:
    started = time.monotonic()
    try:
        answer = await _send(scope, receive, upstream, proxies)
    except ClientGone:
        # Nobody is listening; 499 (nginx's "client closed request") for the access log.
        await _send_whole(send, 499, [(b"content-length", b"0")], b"")
        return
    except httpx.HTTPError as exc:
        upstream.record(ok=False, started=started, detail=repr(exc))
        raise translate_transport_error(upstream.name, exc) from exc

    response = answer.answer
    if response.status >= 500 or response.status == 401:
        await _read_failure(upstream, answer, started, send)
        return
    upstream.record(ok=True, started=started)
    if answer.body is not None:
        await _send_whole(send, response.status, _response_headers(response), answer.body)
        return
    try:
        await _relay(upstream, response, receive, send)
    except ClientGone:
        return  # the edge's access line says the client left


async def forward(
    scope: Scope, receive: Receive, send: Send, upstream: Upstream, proxies: TrustedProxies
) -> None:
    """Proxy one request to `upstream`; a failure before the answer started is the SPEC's
    JSON error (rendered here: this runs below FastAPI's exception handlers)."""
    started = False

    async def watched_send(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        await _forward(scope, receive, watched_send, upstream, proxies)
    except EaselError as exc:
        if started:
            raise
        await error_response(exc)(scope, receive, send)
