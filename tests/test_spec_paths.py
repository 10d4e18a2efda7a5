"""The public HTTP paths are a contract (SPEC.md): pin every one of its API table.

Each row of the table is either served today (documented in the gateway's OpenAPI document
and answering through the gateway in both topologies) or listed as not built yet; a path
in neither list, or in the SPEC but not here, fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

SPEC = Path(__file__).resolve().parents[2] / "shared" / "SPEC.md"

IMAGE_UTILS_OPS = ("resize", "crop", "convert", "extract-object", "diff", "canny", "mask")
MISSING_ID = "0" * 32  # a well-formed task id no job has

# (method, path as in SPEC.md) -> (a request path, its JSON body or None, the statuses a
# served path answers that request with)
SERVED: dict[tuple[str, str], tuple[str, object, tuple[int, ...]]] = {
    ("GET", "/api/health"): ("/api/health", None, (200,)),
    ("GET", "/api/system/health"): ("/api/system/health", None, (200,)),
    ("POST", "/api/generate"): ("/api/generate", {}, (422,)),
    ("POST", "/api/generate/async"): ("/api/generate/async", {"no_such_field": 1}, (422,)),
    ("GET", "/api/generate/status/{task_id}"): (f"/api/generate/status/{MISSING_ID}", None, (404,)),
    ("GET", "/api/generate/result/{task_id}"): (f"/api/generate/result/{MISSING_ID}", None, (404,)),
    ("POST", "/api/generate/cancel/{task_id}"): (
        f"/api/generate/cancel/{MISSING_ID}",
        None,
        (404,),
    ),
    ("GET", "/api/generate/events/{task_id}"): (f"/api/generate/events/{MISSING_ID}", None, (404,)),
    ("POST", "/api/smart-mask"): ("/api/smart-mask", {}, (422,)),
    ("POST", "/api/smart-mask/prepare"): ("/api/smart-mask/prepare", {}, (422,)),
    ("POST", "/api/image-utils/{op}"): ("/api/image-utils/resize", {}, (422,)),
    ("GET", "/health"): ("/health", None, (200,)),
    ("POST", "/generate"): ("/generate", {}, (422,)),
    ("GET", "/docs"): ("/docs", None, (200,)),
    ("GET", "/openapi.json"): ("/openapi.json", None, (200,)),
    ("GET", "/api/workflows"): ("/api/workflows", None, (200,)),
    ("GET", "/api/models"): ("/api/models", None, (200,)),
    ("POST", "/api/models/{name}/load"): ("/api/models/no-such-model/load", None, (404,)),
    ("POST", "/api/models/{name}/unload"): ("/api/models/no-such-model/unload", None, (404,)),
    ("GET", "/"): ("/", None, (200,)),
    ("GET", "/metrics"): ("/metrics", None, (200,)),
    ("GET", "/api/images/{sha256}.{ext}"): (f"/api/images/{'0' * 64}.png", None, (404,)),
}

# Rows of the SPEC no service answers yet, with what will build them.
NOT_BUILT: dict[tuple[str, str], str] = {}

# Served, but not part of the API document (the document itself, its page, metrics).
UNDOCUMENTED = {("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/metrics"), ("GET", "/")}


def spec_rows(text: str) -> set[tuple[str, str]]:
    """(method, path) of every row of SPEC.md's API table. A cell may list several,
    comma-separated; a path without a method takes the one before it."""
    table = text.split("## Public API", 1)[1].split("\n### ", 1)[0]
    rows: set[tuple[str, str]] = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not cells or not re.match(r"(GET|POST|PUT|PATCH|DELETE) /", cells[0]):
            continue
        method = ""
        for part in cells[0].split(","):
            words = part.split()
            if len(words) == 2:
                method = words[0]
            rows.add((method, words[-1]))
    return rows


def test_the_spec_parser_reads_a_table_row() -> None:
    text = "## Public API\n| a | b |\n|---|---|\n| GET /x, /y, POST /z/{id} | s | it |\n### Next"
    assert spec_rows(text) == {("GET", "/x"), ("GET", "/y"), ("POST", "/z/{id}")}


def test_every_path_of_the_spec_is_pinned() -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not beside this checkout")
    rows = spec_rows(SPEC.read_text())
    assert len(rows) >= 20, "the SPEC's API table was not found"
    pinned = set(SERVED) | set(NOT_BUILT)
    assert rows - pinned == set(), "SPEC paths neither served nor listed as not built"
    assert pinned - rows == set(), "pinned paths the SPEC does not have"
    assert not set(SERVED) & set(NOT_BUILT)


def test_gateway_openapi_documents_every_served_path(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    for method, path in set(SERVED) - UNDOCUMENTED:
        if path == "/api/image-utils/{op}":
            for op in IMAGE_UTILS_OPS:
                assert method.lower() in document["paths"].get(f"/api/image-utils/{op}", {}), op
        else:
            assert method.lower() in document["paths"].get(path, {}), (method, path)
    for method, path in NOT_BUILT:
        assert method.lower() not in document["paths"].get(path, {}), (method, path)


def test_every_served_path_answers(api: httpx.Client) -> None:
    for (method, path), (request_path, body, statuses) in SERVED.items():
        response = api.request(method, request_path, json=body)
        assert response.status_code in statuses, (method, path, response.status_code)
        assert "x-request-id" in response.headers, (method, path)


def test_every_image_utils_op_answers(api: httpx.Client) -> None:
    for op in IMAGE_UTILS_OPS:
        assert api.post(f"/api/image-utils/{op}", json={}).status_code == 422, op


def test_metrics_in_prometheus_format(api: httpx.Client) -> None:
    api.get("/api/health")
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'easel_http_requests_total{method="GET",route="/api/health",service="gateway"' in (
        response.text
    )
