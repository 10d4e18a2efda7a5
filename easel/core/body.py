"""Request bodies as JSON or multipart form, validated by one pydantic model.

Image fields arrive as base64 strings in JSON, or as uploaded files (bytes) in a form.
Form values other than files are strings; pydantic's lax mode coerces them.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from easel.core.errors import (
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    validation_details,
)
from easel.core.json_guard import check_json_text

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_fields(
    request: Request, *, max_field_bytes: int, max_json_depth: int
) -> dict[str, Any]:
    """A JSON body's bytes were checked already (easel.core.json_guard's middleware, by
    every service app); JSON inside a form field is checked here, with `max_json_depth`."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in ("application/json", ""):
        raw = await request.body()
        try:
            data = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"body is not valid JSON: {exc.msg} at position {exc.pos}",
                details=[{"field": "body", "message": "invalid JSON"}],
            ) from exc
        if not isinstance(data, dict):
            raise InvalidInput.field("body", "expected a JSON object")
        return data
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # Text fields may carry an image as base64: the codec judges (and names) it, so
        # the parser's own cap is only the body limit. Files spool to disk, not memory.
        try:
            form = await request.form(max_part_size=max_field_bytes)
        except StarletteHTTPException as exc:
            if "maximum size" not in str(exc.detail):
                raise
            raise PayloadTooLarge(
                f"a form field is larger than the limit of {max_field_bytes} bytes",
                details={"limit_bytes": max_field_bytes},
            ) from exc
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                fields[key] = await value.read()
            else:
                fields[key] = _parse_form_value(key, value, max_json_depth=max_json_depth)
        return fields
    raise UnsupportedMediaType(
        f"unsupported content type {content_type!r}; send application/json or multipart/form-data"
    )


def _parse_form_value(key: str, value: str, *, max_json_depth: int) -> Any:
    # Lists and objects (points, box, refine) come as JSON text inside a form field.
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        check_json_text(
            stripped.encode("utf-8", "surrogatepass"), max_depth=max_json_depth, field=key
        )
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    return value


def validate_fields(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        details = validation_details(exc.errors())
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise InvalidInput(message, details=details) from exc


async def parse_body(
    request: Request, model: type[ModelT], *, max_field_bytes: int, max_json_depth: int
) -> ModelT:
    fields = await read_fields(
        request, max_field_bytes=max_field_bytes, max_json_depth=max_json_depth
    )
    return validate_fields(model, fields)
