"""The gateway's OpenAPI document (all-in-one) tells the truth about every operation: its
request body, its success response and its errors, in the envelope the server really sends,
each with an example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.compose.gateway import create_gateway
from easel.compose.settings import EaselSettings
from easel.core.errors import ErrorEnvelope

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
METHODS = ("get", "post", "put", "patch", "delete")
# POST operations that read no body: the id is in the path.
BODYLESS = {
    ("post", "/api/generate/requests/{request_id}/cancel"),
    ("post", "/api/generate/cancel/{task_id}"),
    ("post", "/api/models/{name}/load"),
    ("post", "/api/models/{name}/unload"),
}
# Bodies parsed by easel.core.body.read_fields: JSON or multipart, so an unreadable form (400)
# and an unsupported content type (415) can occur; the first-version `/generate` is JSON.
MULTIPART_BODIES = {
    "/api/generate",
    "/api/generate/stream",
    "/api/generate/async",
    "/api/smart-mask",
    *(
        f"/api/image-utils/{op}"
        for op in ("resize", "crop", "convert", "extract-object", "diff", "canny", "mask")
    ),
}
GATEWAY_OWN = {"/api/health", "/api/system/health", "/health"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EASEL_") or key.endswith("_SERVICE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _settings(tmp_path: Path) -> EaselSettings:
    return EaselSettings.load(
        data_dir=tmp_path / "data", generation_model="tiny-random", generation_load="lazy"
    )


@pytest.fixture()
def document(tmp_path: Path) -> dict[str, Any]:
    return create_gateway(_settings(tmp_path)).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    return bool(_resolve(document, media.get("schema", {})).get("examples"))


def test_no_fastapi_validation_error_remains(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text
    assert "ErrorEnvelope" in document["components"]["schemas"]


def test_every_route_that_reads_a_body_declares_it(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if method != "post" or (method, path) in BODYLESS:
            assert "requestBody" not in operation, (method, path)
            continue
        content = operation.get("requestBody", {}).get("content", {})
        assert "application/json" in content, (method, path)
        if path in MULTIPART_BODIES:
            assert "multipart/form-data" in content, (method, path)
        for media in content.values():
            assert media.get("schema"), (method, path)
            assert _has_example(document, media), f"no request example: {method} {path}"


def test_the_async_body_is_the_generation_request_with_job_options(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/api/generate/async"]["post"]
    schema = _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert {"prompt", "mode", "input_image", "webhook", "timeout"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


def test_every_response_has_a_schema_and_errors_use_the_envelope(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            assert content, f"{method} {path} {status}: no content"
            for media_type, media in content.items():
                assert media.get("schema"), f"{method} {path} {status} {media_type}: no schema"
            if int(status) >= 400:
                assert list(content) == ["application/json"], (method, path, status)
                schema = content["application/json"]["schema"]
                assert schema == {"$ref": ENVELOPE_REF}, (method, path, status)
                assert _has_example(document, content["application/json"]), (path, status)


def test_every_operation_has_a_success_example(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        successes = [r for s, r in operation["responses"].items() if s.startswith("2")]
        assert successes, (method, path)
        for response in successes:
            for media in response["content"].values():
                assert _has_example(document, media), f"no response example: {method} {path}"


def test_the_errors_a_route_can_produce_are_documented(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        statuses = {int(s) for s in operation["responses"]}
        if "requestBody" in operation:
            assert {413, 422} <= statuses, (method, path)
        if path in MULTIPART_BODIES:
            assert {400, 415} <= statuses, (method, path)
        if path not in GATEWAY_OWN:  # proxied: the service may be down, slow or broken
            assert {502, 503, 504} <= statuses, (method, path)
        if "{task_id}" in path or "{request_id}" in path:
            assert {404, 422} <= statuses, (method, path)
    responses = document["paths"]
    assert 429 in {int(s) for s in responses["/api/generate"]["post"]["responses"]}
    assert {409, 429} <= {int(s) for s in responses["/api/generate/async"]["post"]["responses"]}
    assert 409 in {int(s) for s in responses["/api/generate/result/{task_id}"]["get"]["responses"]}


def test_the_job_result_is_typed(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/generate/result/{task_id}"]["get"]["responses"]["200"]
    schema = _resolve(document, ok["content"]["application/json"]["schema"])
    assert {"task_id", "images", "seed", "model", "timings"} <= set(schema["required"])
    image = _resolve(document, schema["properties"]["images"]["items"])
    assert {"sha256", "seed", "width", "height"} <= set(image["required"])
    assert {"image", "url"} <= set(image["properties"])  # by output: base64 or url


def test_cross_field_rules_are_stated(document: dict[str, Any]) -> None:
    generation = document["components"]["schemas"]["GenerationRequest"]
    assert "mask_image" in generation["description"] and "prompt" in generation["description"]
    resize = document["components"]["schemas"]["ResizeRequest"]
    assert "scale" in resize["description"]


async def test_real_errors_match_the_documented_envelope(tmp_path: Path) -> None:
    gateway = create_gateway(_settings(tmp_path))
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            answers = [
                await client.post("/api/generate/async", json={"no_such_field": 1}),
                await client.get("/api/generate/status/" + "0" * 32),
                await client.post(
                    "/api/image-utils/resize", content=b"x", headers={"content-type": "text/plain"}
                ),
                await client.get("/api/jobs", params={"limit": 0}),
            ]
    assert [a.status_code for a in answers] == [422, 404, 415, 422]
    for answer in answers:
        ErrorEnvelope.model_validate(answer.json())


def test_the_generation_limits_of_this_server_are_in_its_document(tmp_path: Path) -> None:
    settings = EaselSettings.load(
        data_dir=tmp_path / "data", generation_model="tiny-random", max_steps=7, max_side=320
    )
    properties = create_gateway(settings).openapi()["components"]["schemas"]["GenerationRequest"][
        "properties"
    ]
    assert properties["steps"]["anyOf"][0]["maximum"] == 7
    assert properties["width"]["anyOf"][0]["maximum"] == 320
    assert properties["num_images"]["maximum"] == settings.of("generation").max_num_images  # type: ignore[attr-defined]


def test_a_forms_lists_and_objects_are_documented_as_json_parts(document: dict[str, Any]) -> None:
    # easel.core.body reads a form's `points`, `box`, `refine`... as JSON text, one part each.
    form = document["paths"]["/api/smart-mask"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]
    assert set(form["encoding"]) == {"points", "labels", "box", "refine"}
    assert all(e == {"contentType": "application/json"} for e in form["encoding"].values())


def test_each_services_own_document_uses_the_envelope(tmp_path: Path) -> None:
    # Split topology: each service serves its own /openapi.json.
    from easel.compose.apps import build_app
    from easel.compose.services import SERVICES

    settings = _settings(tmp_path)
    for spec in SERVICES:
        text = json.dumps(build_app(spec, settings).openapi())
        assert "HTTPValidationError" not in text, spec.name
        assert ENVELOPE_REF in text, spec.name
