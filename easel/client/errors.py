"""The SDK's exceptions: an error answer of the server (`ApiError` and its subclasses, one per
kind a caller handles apart), a network failure, and the ends of a job that are not a result.

Every `ApiError` carries the server's envelope, `{"error": {"code", "message", "details"?},
"request_id"}`, and the HTTP status of the answer.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx


class ClientError(Exception):
    """Base of every exception the SDK raises."""


class NetworkError(ClientError):
    """The request or its answer was lost on the way (a timeout, a closed connection)."""


class ConnectionFailed(NetworkError):
    """No connection to the server: it is not running, or not at this `base_url`."""


class ApiError(ClientError):
    """The server answered with an error: its envelope's `code`, `message`, `details` and
    `request_id` (quote it when reporting a problem), the HTTP `status`, and for 429 and
    503 the seconds the server asks to wait (`retry_after`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after


class Unauthorized(ApiError):
    """401 or 403: no API key, a wrong one, or one without the scope the call needs."""


class NotFound(ApiError):
    """404: no such job (or one of another key), image, model or path on this server."""


class Conflict(ApiError):
    """409: a job's result asked for before it is done, or a reused idempotency key."""


class InvalidRequest(ApiError):
    """400, 413, 415 or 422: the request was refused; `details` names the fields."""


class RateLimited(ApiError):
    """429: too many requests (or a full job queue); `retry_after` says how long to wait."""


class Unavailable(ApiError):
    """502, 503 or 504: a service (or its engine) is down, busy or too slow."""


class JobFailed(ApiError):
    """A job ended in failure: its error's code, message and details."""


class JobCancelled(ClientError):
    """A job was cancelled before it produced a result."""


class WaitTimeout(ClientError, TimeoutError):
    """`wait` gave up: the job had not ended within its `timeout`."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_class(status: int) -> type[ApiError]:
    return _BY_STATUS.get(status, ApiError)


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header: seconds, or an HTTP date (seconds from now)."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception of an error answer (its body read already)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        envelope = {"code": f"http_{response.status_code}", "message": response.text[:500]}
    request_id = body.get("request_id") if isinstance(body, dict) else None
    return error_class(response.status_code)(
        response.status_code,
        str(envelope.get("code", f"http_{response.status_code}")),
        str(envelope.get("message", response.reason_phrase)),
        details=envelope.get("details"),
        request_id=request_id or response.headers.get("X-Request-ID"),
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def translate_transport_error(exc: httpx.TransportError, url: str) -> NetworkError:
    """httpx's failure as the SDK's own, saying where it could not get to."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectionFailed(f"cannot connect to {url}: {exc or type(exc).__name__}")
    return NetworkError(f"request to {url} failed: {exc or type(exc).__name__}")
