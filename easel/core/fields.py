"""Request field types shared by services."""

from __future__ import annotations

from typing import Annotated

from pydantic import PlainValidator, WithJsonSchema

IMAGE_DOC = "Base64 (optionally a data URL) in JSON, or a file in multipart/form-data."


def _image_value(value: object) -> str | bytes:
    # One plain check rather than a `str | bytes` union, whose errors pydantic reports
    # under `image.str` and `image.bytes`: the client knows a field named `image`.
    if isinstance(value, str | bytes):
        return value
    raise ValueError("must be a base64 string, a data URL or an uploaded file")


ImageField = Annotated[
    str | bytes,
    PlainValidator(_image_value),
    WithJsonSchema({"type": "string", "description": IMAGE_DOC}),
]
