"""No dot segments: a path the gateway classifies must be the path the service receives.

The key check and the rate limits read the decoded path (`/api/generate/status/../async`
is a `jobs` route), but an HTTP client on the way to the service removes dot segments
(RFC 3986 5.2.4: it sends `/api/generate/async`), so a key could reach a route of a scope
it lacks. No client needs them (browsers, curl and SDKs resolve them before sending), so
a path with a `.` or `..` segment, escaped or not, is refused before anything reads it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.errors import BadRequest, error_body
from easel.core.middleware import send_json_error

_DOT_SEGMENTS = frozenset({".", ".."})


def has_dot_segment(path: str) -> bool:
    if "/." not in path:  # the common case, without splitting (a dot segment follows a "/")
        return path in _DOT_SEGMENTS
    return any(segment in _DOT_SEGMENTS for segment in path.split("/"))


class DotSegmentGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_dot_segment(scope["path"]):
            exc = BadRequest(
                "the path has a '.' or '..' segment: send it resolved",
                details={"field": "path"},
            )
            await send_json_error(send, exc.status, error_body(exc.code, exc.message, exc.details))
            return
        await self.app(scope, receive, send)
