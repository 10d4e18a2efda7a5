"""The public HTTP paths are a contract (SPEC.md): pin them, as built so far, against it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

SPEC = Path(__file__).resolve().parents[2] / "shared" / "SPEC.md"

# (method, path) rows of SPEC.md's API table that the gateway serves today.
# Each later service adds its rows here when it lands.
PUBLIC = [
    ("GET", "/api/health"),
    ("GET", "/api/system/health"),
    ("GET", "/health"),
    ("POST", "/api/generate"),
    ("POST", "/api/smart-mask"),
    *[("POST", f"/api/image-utils/{op}") for op in
      ("resize", "crop", "convert", "extract-object", "diff", "canny", "mask")],
]  # fmt: skip


def spec_text() -> str:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not beside this checkout")
    return SPEC.read_text()


def test_pinned_paths_are_in_the_spec() -> None:
    text = spec_text()
    ops = re.search(r"POST /api/image-utils/\{op\} \| image-utils \| (.*?) \|", text)
    assert ops is not None
    for method, path in PUBLIC:
        if path.startswith("/api/image-utils/"):
            assert path.rsplit("/", 1)[1] in ops.group(1), path
        else:
            assert re.search(rf"{method} {re.escape(path)}\b", text), (method, path)


def test_gateway_openapi_documents_every_public_path(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    for method, path in PUBLIC:
        assert method.lower() in document["paths"].get(path, {}), (method, path)
    assert api.get("/docs").status_code == 200


def test_every_public_path_answers(api: httpx.Client) -> None:
    for method, path in PUBLIC:
        response = api.request(method, path, json={} if method == "POST" else None)
        assert response.status_code in (200, 422), (method, path, response.status_code)
        assert "x-request-id" in response.headers


def test_metrics_in_prometheus_format(api: httpx.Client) -> None:
    api.get("/api/health")
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'easel_http_requests_total{method="GET",route="/api/health",service="gateway"' in (
        response.text
    )
