"""One exception tree, rendered to SPEC.md's error envelope by one set of handlers.

Envelope: `{"error": {"code", "message", "details"?}, "request_id"}`.
Third-party errors are translated at the seam where they occur, never in routes.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from easel.core.request_context import current_request_id

log = logging.getLogger("easel.errors")


class EaselError(Exception):
    """Base of every error easel reports to a client."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(EaselError):
    status, code = 400, "bad_request"


class Unauthorized(EaselError):
    status, code = 401, "unauthorized"


class InternalUnauthorized(Unauthorized):
    """A service refused a request without a valid `X-Easel-Internal` credential: a code
    of its own, so the gateway can tell its own token being refused (a misconfiguration)
    from a client's failed login."""

    code = "internal_unauthorized"


class Forbidden(EaselError):
    status, code = 403, "forbidden"


class NotFound(EaselError):
    status, code = 404, "not_found"


class Conflict(EaselError):
    status, code = 409, "conflict"


class PayloadTooLarge(EaselError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(EaselError):
    status, code = 415, "unsupported_media_type"


class InvalidInput(EaselError):
    """A request field is wrong; `details` names it: `[{"field", "message"}]`."""

    status, code = 422, "invalid_input"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


class TooManyRequests(EaselError):
    status, code = 429, "too_many_requests"


class BadGateway(EaselError):
    status, code = 502, "bad_gateway"


class ServiceUnavailable(EaselError):
    status, code = 503, "service_unavailable"


class GatewayTimeout(EaselError):
    status, code = 504, "gateway_timeout"


class ClientGone(EaselError):
    """The client disconnected before its work started; nobody reads the answer (499 is
    nginx's "client closed request", for the access log)."""

    status, code = 499, "client_closed_request"


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable and machine-readable: invalid_input, not_found, ...")
    message: str = Field(description="For people; may change between versions.")
    details: Any = Field(
        None, description="invalid_input: `[{field, message}]`; otherwise an object, if any."
    )


class ErrorEnvelope(BaseModel):
    """Every error easel answers (SPEC.md): the schema of every documented error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_input",
                        "message": "steps: Input should be greater than or equal to 1",
                        "details": [
                            {
                                "field": "steps",
                                "message": "Input should be greater than or equal to 1",
                            }
                        ],
                    },
                    "request_id": "5f0c6e1a9b2d4c3e8f7a6b5c4d3e2f1a",
                }
            ]
        }
    )

    error: ErrorInfo
    request_id: str | None = Field(description="The request's `X-Request-ID`.")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error, "request_id": current_request_id()}


def error_response(exc: EaselError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details),
        status_code=exc.status,
        headers=exc.headers,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    # FastAPI prefixes locations with "body"/"query"/"path"; the client thinks in fields.
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_details(errors: Any) -> list[dict[str, str]]:
    details = []
    for item in errors:
        # A syntax error's location is ("body", position): the body is what is wrong.
        json_invalid = item.get("type") == "json_invalid"
        field = "body" if json_invalid else _field_name(tuple(item.get("loc", ())))
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        details.append({"field": field, "message": message})
    return details


def install_error_handlers(app: FastAPI) -> None:
    """Render every error an app can raise as the SPEC envelope."""

    async def on_easel_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EaselError)
        return error_response(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = validation_details(exc.errors())
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return error_response(InvalidInput(message or "invalid request", details=details))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)

    app.add_exception_handler(EaselError, on_easel_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
