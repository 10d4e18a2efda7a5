"""OpenAPI helpers, so each document tells what the server really does: bodies parsed by
`easel.core.body` (JSON or multipart) under one schema, the errors a route can answer in the
SPEC's envelope (`ErrorEnvelope`), and no FastAPI `HTTPValidationError` (easel never sends
one: its validation errors are envelopes too)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from easel.core.errors import ErrorEnvelope

REF = "#/components/schemas/{model}"
ENVELOPE_REF = REF.format(model=ErrorEnvelope.__name__)

# An 8x8 PNG (a yellow square on blue) and its mask: small enough to read in an example.
EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAJUlEQVR42mPUiDrBgA0wMeAALBDqUl4CXEhv0gJ8Ok"
    "iXYCTZVQDdfAWlFWlC8gAAAABJRU5ErkJggg=="
)
EXAMPLE_MASK = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAG0lEQVR42mNgQAeMDAz/GRgYGBmYYCKYDEwAADRSAQ"
    "iRgurpAAAAAElFTkSuQmCC"
)

# status -> (code, when it happens, an example message)
_ERRORS: dict[int, tuple[str, str, str]] = {
    400: (
        "bad_request",
        "The body cannot be parsed at all (e.g. a malformed multipart body).",
        "There was an error parsing the body",
    ),
    401: (
        "unauthorized",
        "API keys are on and the request carries none, or one that is unknown or revoked "
        "(`Authorization: Bearer <key>` or `X-API-Key`; `details.field` names the header).",
        "an API key is required: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    ),
    403: (
        "forbidden",
        "The key lacks the scope this route needs (`details.scope`), or may not list "
        "another key's jobs without the admin scope, or a browser request from another "
        "site (its Origin is neither this server nor in EASEL_CORS_ORIGINS) tried to change "
        "something.",
        "key 'ci' lacks the generate scope this route needs",
    ),
    404: ("not_found", "Unknown id, or removed after its retention.", "no job '0f3c…'"),
    409: (
        "conflict",
        "Not in a state that allows it (codes: conflict, job_failed), or an "
        "Idempotency-Key reused with another body.",
        "job 0f3c… is running, not done",
    ),
    413: (
        "payload_too_large",
        "The body, a form field, an image's bytes or its pixels exceed a limit.",
        "the body is larger than the limit of 52428800 bytes",
    ),
    415: (
        "unsupported_media_type",
        "The body is neither application/json nor multipart/form-data.",
        "unsupported content type 'text/plain'; send application/json or multipart/form-data",
    ),
    422: (
        "invalid_input",
        "A field is wrong (including rules across fields); `details` names each: "
        "`[{field, message}]`.",
        "steps: Input should be greater than or equal to 1",
    ),
    429: (
        "too_many_requests",
        "The queue is full, or the key has its most jobs queued or running "
        "(`max_concurrent_jobs` in details); retry after `Retry-After` seconds.",
        "the job queue is full (1000 queued); retry later",
    ),
    502: (
        "bad_gateway",
        "A service or its engine broke off or answered something unreadable; a service's "
        "own error (e.g. `workflow_failed`) keeps its code and details.",
        "the generation service broke off the exchange",
    ),
    503: (
        "service_unavailable",
        "A service or its engine is unreachable, loading or shutting down; may carry "
        "`Retry-After`.",
        "the generation service is unreachable",
    ),
    504: (
        "gateway_timeout",
        "A service or its engine did not answer in time.",
        "the generation service did not answer in time",
    ),
}
# What any route with a body can answer (400: a body that cannot be decoded at all); a
# body read by `easel.core.body` (JSON or multipart) also 415.
BODY_ERRORS = (400, 413, 422)
FORM_BODY_ERRORS = (400, 413, 415, 422)
# What the gateway answers for any proxied route when the service fails it.
UPSTREAM_ERRORS = (502, 503, 504)
_HEADERS = {
    401: {
        "WWW-Authenticate": {"description": '`Bearer realm="easel"`', "schema": {"type": "string"}}
    },
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: the errors it can answer, each in the envelope, with an example."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, when, message = _ERRORS[status]
        example: dict[str, Any] = {
            "error": {"code": code, "message": message},
            "request_id": "5f0c6e1a9b2d4c3e8f7a6b5c4d3e2f1a",
        }
        if status == 422:
            example["error"]["details"] = [{"field": "steps", "message": message.split(": ")[1]}]
        response: dict[str, Any] = {
            "description": when,
            "content": {"application/json": {"schema": {"$ref": ENVELOPE_REF}, "example": example}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


def event_stream(example: str, events: Sequence[str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a server-sent-events route: its 200, the schema of one event (as
    OpenAPI 3.2 reads a stream's schema) and an example of the stream."""
    event = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": list(events)},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "description": "The event as JSON, its `type` the event's name.",
            },
            "id": {"type": "string", "description": "Its place in the log (Last-Event-ID)."},
            "retry": {"type": "integer"},
        },
    }
    return {
        200: {
            "description": "Server-sent events, one object per event.",
            "content": {"text/event-stream": {"schema": event, "example": example}},
        }
    }


def json_or_form_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose body is parsed by `easel.core.body`: the body as
    JSON or multipart (image fields as files or base64 text), and the errors of parsing it."""
    schema = {"$ref": REF.format(model=model.__name__)}
    form: dict[str, Any] = {"schema": schema}
    if encoding := _json_parts(model):
        form["encoding"] = encoding
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "multipart/form-data": form},
        },
        "responses": {str(s): r for s, r in error_responses(*FORM_BODY_ERRORS).items()},
    }


def _json_parts(model: type[BaseModel]) -> dict[str, Any]:
    """A form's lists and objects (points, box, refine) are read as JSON text, one part
    each (`easel.core.body`), not as repeated parts: say so per field."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def structured(field: dict[str, Any]) -> bool:
        for branch in field.get("anyOf", [field]):
            if "$ref" in branch:
                branch = defs[branch["$ref"].rsplit("/", 1)[1]]
            if branch.get("type") in ("array", "object"):
                return True
        return False

    return {
        name: {"contentType": "application/json"}
        for name, field in schema.get("properties", {}).items()
        if structured(field)
    }


def _is_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def truthful(schema: dict[str, Any], models: Sequence[type[BaseModel]] = ()) -> dict[str, Any]:
    """Put the envelope where FastAPI documented its own `{detail: [...]}` 422, and list
    `ErrorEnvelope` and `models` (and what they use) under components."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if _is_validation_error(responses.get("422", {})):
                responses["422"] = error_responses(422)[422]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    everything: list[type[BaseModel]] = [ErrorEnvelope, *models]
    _, defs = models_json_schema([(m, "validation") for m in everything], ref_template=REF)
    components.update(defs.get("$defs", {}))
    return schema


def truthful_openapi(
    app: FastAPI, models: Sequence[type[BaseModel]] = ()
) -> Callable[[], dict[str, Any]]:
    """An `app.openapi` that makes FastAPI's document `truthful` (see there)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = truthful(base(), models)
        return app.openapi_schema

    return openapi


def _set_maximum(schema: dict[str, Any], maximum: float) -> None:
    # An optional number is `anyOf: [{type: integer, ...}, {type: null}]`: bound the number.
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") in ("integer", "number"):
            branch["maximum"] = maximum


def with_maxima(
    app: FastAPI, model: type[BaseModel], maxima: dict[str, float]
) -> Callable[[], dict[str, Any]]:
    """An `app.openapi` that states the limits this server's settings put on `model`'s
    fields (e.g. `steps` at most EASEL_MAX_STEPS), so a request the document allows is
    not refused for them."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        properties = schema["components"]["schemas"][model.__name__]["properties"]
        for name, maximum in maxima.items():
            _set_maximum(properties[name], maximum)
        return schema

    return openapi
