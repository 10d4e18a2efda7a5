"""JSON bodies no parser may be given: invalid UTF-8, and nesting past `EASEL_MAX_JSON_DEPTH`.

Each is a 422 naming the body on every JSON endpoint, those that read their body through
`easel.core.body` and those FastAPI parses itself (the first version's `POST /generate`),
through the gateway in both topologies, never a 5xx; nothing recurses first.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from easel.core import json_guard
from easel.core.json_guard import nesting_depth
from tests.support.images import b64, noise_image
from tests.support.servers import ServerProcess, Stack, start_server

IMAGE_OPS = ("resize", "crop", "convert", "extract-object", "diff", "canny", "mask")
JSON_ENDPOINTS = [
    "/api/generate",
    "/api/generate/stream",
    "/api/generate/async",
    "/generate",  # compat: the first version's pod API, parsed by FastAPI
    "/api/smart-mask",
    *(f"/api/image-utils/{op}" for op in IMAGE_OPS),
]
INVALID_UTF8 = b'{"prompt": "caf\xe9 \xff", "mode": "text-to-image"}'


def nested(depth: int) -> bytes:
    """`{"prompt": "x", "extra_params": [[...]]}`: `depth` levels in all, the object included."""
    return b'{"prompt": "x", "extra_params": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def post_json(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def assert_body_refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "invalid_input", body
    assert body["error"]["details"][0]["field"] == "body", body
    assert words in body["error"]["message"], body
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_invalid_utf8_is_422_naming_the_body(api: httpx.Client, path: str) -> None:
    assert_body_refused(post_json(api, path, INVALID_UTF8), "UTF-8")


def test_invalid_utf8_without_a_content_type_is_422(api: httpx.Client) -> None:
    # easel.core.body reads a body without a content type as JSON.
    assert_body_refused(api.post("/api/image-utils/resize", content=INVALID_UTF8), "UTF-8")


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_nesting_past_the_limit_is_422_naming_the_body(
    api: httpx.Client, path: str, depth: int
) -> None:
    assert_body_refused(post_json(api, path, nested(depth)), "nested")


@pytest.mark.parametrize("path", ["/api/generate/async", "/api/image-utils/resize"])
def test_unclosed_nesting_is_refused_before_parsing(api: httpx.Client, path: str) -> None:
    # The parser would recurse through every "[" before finding the text cut short.
    assert_body_refused(post_json(api, path, b'{"a": ' + b"[" * 200_000), "nested")


@pytest.mark.parametrize("path", ["/api/generate", "/generate", "/api/image-utils/resize"])
def test_nesting_at_the_limit_is_judged_as_any_body(api: httpx.Client, path: str) -> None:
    response = post_json(api, path, nested(64))
    assert response.status_code == 422, response.text
    fields = [detail["field"] for detail in response.json()["error"]["details"]]
    assert "body" not in fields, response.text


def test_brackets_inside_strings_do_not_count(api: httpx.Client) -> None:
    prompt = '"[[[[' * 100 + "\\" + "{" * 1000 + '\\"'
    body = json.dumps({"prompt": prompt, "steps": 0}).encode()
    response = post_json(api, "/api/generate", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "steps"


def test_a_deep_form_field_is_422_naming_it(api: httpx.Client) -> None:
    image = b64(noise_image(32, 32))
    fields = {"image": image, "x": "0", "y": "0", "width": "8", "height": "8"}
    response = api.post("/api/image-utils/crop", data={**fields, "box": "[" * 5000 + "]" * 5000})
    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == "box" and "nested" in detail["message"], detail


# Only the split topology serves the generation service by itself.
@pytest.mark.parametrize("stack", ["split"], indirect=True)
def test_the_first_version_gpu_api_refuses_too(stack: Stack) -> None:
    """compat: the generation service's own `POST /generate`, parsed by FastAPI."""
    url = stack.services["generation"].url + "/generate"
    with httpx.Client(timeout=60) as client:
        assert_body_refused(post_json(client, url, INVALID_UTF8), "UTF-8")
        assert_body_refused(post_json(client, url, nested(1_000)), "nested")


@pytest.fixture(scope="module")
def shallow_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("shallow")
    server = start_server("image-utils", tmp, env={"EASEL_MAX_JSON_DEPTH": "3"})
    yield server
    server.stop()


def test_the_depth_limit_is_configurable(shallow_service: ServerProcess) -> None:
    with httpx.Client(base_url=shallow_service.url, timeout=60) as client:
        refused = post_json(client, "/api/image-utils/resize", b'{"a": [[[1]]]}')
        assert_body_refused(refused, "3")
        judged = post_json(client, "/api/image-utils/resize", b'{"a": [[1]]}')
        assert judged.status_code == 422, judged.text
        assert judged.json()["error"]["details"][0]["field"] != "body"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b'"[["', 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["\\"[", "\\\\", ["x"]]', 2),  # escaped quotes and backslashes
        (b'"\\', 0),  # a string cut short after a backslash
        (b'["a', 1),  # ... and without its closing quote
        (b"[[[", 3),  # unclosed: as deep as a parser would go
        (b"]]]][", 0),  # closed before opened: the parser fails at once
    ],
)
def test_nesting_depth(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


def parser_depth(text: bytes) -> int | None:
    """How deep a parser goes, byte by byte; None where it fails at a backslash outside a
    string (the scan may then count more: it never counts less)."""
    level = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 92, byte != 34)
        elif byte == 92:
            return None
        elif byte == 34:
            in_string = True
        elif byte in b"[{":
            level += 1
            deepest = max(deepest, level)
        elif byte in b"]}":
            level -= 1
    return deepest


@pytest.mark.parametrize("chunk", [1, 2, 7, 1 << 16, 1 << 20])
def test_nesting_depth_matches_a_parser_across_chunk_boundaries(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_guard, "_CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(2000):
        text = bytes(rng.choice(b'"\\[]{}a') for _ in range(rng.randint(0, 30)))
        expected = parser_depth(text)
        if expected is None:
            continue
        assert nesting_depth(text) == expected, text


@pytest.mark.parametrize("path", ["/generate", "/api/generate/async", "/api/image-utils/resize"])
def test_a_syntax_error_names_the_body(api: httpx.Client, path: str) -> None:
    response = post_json(api, path, b'{"mode": ')
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "body", response.text
