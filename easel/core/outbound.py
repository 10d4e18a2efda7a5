"""The one HTTP client for URLs the server itself calls (webhooks; image URLs later):
only http(s), only public addresses unless allowed, each connection to exactly the address
checked (`easel.core.address_guard`), redirects followed only when asked and only to
addresses checked the same way, a cap on the answer's size and on the whole exchange's
time, the trace header (`easel.core.tracing`) and a User-Agent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from easel.core.address_guard import (
    SYSTEM_RESOLVER,
    Resolver,
    check_url,
    parse_url,
    pin,
)
from easel.core.tracing import trace_headers

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class OutboundError(Exception):
    """A call to an outside URL got no answer to use (besides the guard's refusals)."""


class ResponseTooLarge(OutboundError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the response is larger than the limit of {limit} bytes")


class TooManyRedirects(OutboundError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} redirects")


class OutboundTimeout(OutboundError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g} s")


# ---- the client -----------------------------------------------------------------------
@dataclass(frozen=True)
class OutboundLimits:
    """Caps on one call (`EASEL_OUTBOUND_*`): the whole exchange, redirects and body
    included; the response body's size; and the connect timeout."""

    timeout_s: float = 30.0
    max_response_bytes: int = 20 * 1024 * 1024
    connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class OutboundResponse:
    """An answer, read whole (within the size cap); `url` is the one that answered, as
    given (named, not pinned)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def _user_agent() -> str:
    from easel import __version__

    return f"easel/{__version__}"


def _build_client(limits: OutboundLimits) -> httpx.AsyncClient:
    # No redirects by httpx: each hop is checked here. No kept-alive connections: each
    # request connects to the address it checked, and a pooled connection (keyed by that
    # address) could carry another name's TLS session.
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
        timeout=httpx.Timeout(limits.timeout_s, connect=limits.connect_timeout_s),
    )


def _redirected(method: str, status: int) -> str:
    """The method after a redirect: kept by 307 and 308, GET after 303 (and after 301 or
    302 of a POST, as browsers and httpx do)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


class OutboundClient:
    """Calls URLs from outside (a job's webhook, an image URL). `client` is the httpx
    client underneath (a test passes one with its own transport; the caller closes a
    client it passed); without one, the client builds and closes its own."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        allow_private: bool = False,
        resolver: Resolver = SYSTEM_RESOLVER,
        limits: OutboundLimits | None = None,
        user_agent: str | None = None,
    ) -> None:
        self.limits = limits or OutboundLimits()
        self._owned = client is None
        self.client = client or _build_client(self.limits)
        self.allow_private = allow_private
        self.resolver = resolver
        self.user_agent = user_agent or _user_agent()

    async def check(self, url: str) -> None:
        """UrlRefused unless this client may call `url` (as `check_url`)."""
        await check_url(url, allow_private=self.allow_private, resolver=self.resolver)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float | None = None,
        max_redirects: int = 0,
        max_response_bytes: int | None = None,
    ) -> OutboundResponse:
        """One call, with up to `max_redirects` redirects (each to a checked address; 0:
        a redirect is the answer). `timeout_s` (at most the limit) bounds it all. Raises
        the guard's UrlRefused and HostUnresolved, an OutboundError (ResponseTooLarge,
        TooManyRedirects, OutboundTimeout), or httpx's transport errors."""
        seconds = min(timeout_s or self.limits.timeout_s, self.limits.timeout_s)
        limit = self.limits.max_response_bytes
        cap = min(max_response_bytes or limit, limit)
        try:
            async with asyncio.timeout(seconds):
                return await self._follow(
                    method, url, headers or {}, content, max_redirects=max_redirects, cap=cap
                )
        except TimeoutError as exc:
            raise OutboundTimeout(seconds) from exc

    async def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        *,
        max_redirects: int,
        cap: int,
    ) -> OutboundResponse:
        current = parse_url(url)
        for _ in range(max_redirects + 1):
            response = await self._once(method, current, headers, content, cap)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location or max_redirects == 0:
                return response
            current = current.join(location)
            method = _redirected(method, response.status_code)
            if method == "GET":
                content = None
        raise TooManyRedirects(max_redirects)

    async def _once(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        content: bytes | None,
        cap: int,
    ) -> OutboundResponse:
        target = await pin(url, allow_private=self.allow_private, resolver=self.resolver)
        sent = {
            "user-agent": self.user_agent,
            **headers,
            **trace_headers(),  # this call as a span of the current trace
            "host": target.host_header,
        }
        request = self.client.build_request(
            method,
            target.url,
            headers=sent,
            content=content,
            timeout=httpx.Timeout(self.limits.timeout_s, connect=self.limits.connect_timeout_s),
            extensions=target.extensions,
        )
        response = await self.client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise ResponseTooLarge(cap)
        finally:
            await response.aclose()
        return OutboundResponse(response.status_code, response.headers, bytes(body), url)

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
