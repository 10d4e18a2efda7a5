"""The gateway's forwarding: streaming, headers, and failures mapped to SPEC errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.support.downstream import WAIT, Downstream
from tests.support.servers import ServerProcess, free_port, start_server

PREFIX = "/api/image-utils"


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_slow_service_gets_504_after_the_configured_timeout(gateway: ServerProcess) -> None:
    # The downstream answers after 3 s; the gateway gives it 0.5 s.
    response = httpx.post(f"{gateway.url}{PREFIX}/slow", timeout=10)
    body = assert_envelope(response, 504, "gateway_timeout")
    assert body["error"]["details"]["service"] == "image_utils"


def test_refused_service_gets_503(tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    server = start_server("gateway", tmp_path, env={"EASEL_IMAGE_UTILS_URL": dead})
    try:
        response = httpx.post(f"{server.url}{PREFIX}/resize", json={}, timeout=10)
        assert_envelope(response, 503, "service_unavailable")
        assert response.headers["retry-after"]
    finally:
        server.stop()


def test_bare_500_becomes_502(gateway: ServerProcess) -> None:
    response = httpx.post(f"{gateway.url}{PREFIX}/bare-500", timeout=10)
    body = assert_envelope(response, 502, "bad_gateway")
    assert body["error"]["details"]["upstream_status"] == 500


def test_500_envelope_passes_through_as_the_services_word(gateway: ServerProcess) -> None:
    response = httpx.post(f"{gateway.url}{PREFIX}/envelope-500", timeout=10)
    assert response.status_code == 500
    assert response.json()["error"] == {"code": "internal_error", "message": "model exploded"}


def test_deliberate_503_passes_through_with_retry_after(gateway: ServerProcess) -> None:
    response = httpx.post(f"{gateway.url}{PREFIX}/overloaded", timeout=10)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "queue full"
    assert response.headers["retry-after"] == "7"


def test_response_body_streams(gateway: ServerProcess, downstream: Downstream) -> None:
    # The downstream sends its second chunk only after the client has the first: a gateway
    # that buffered the whole response would make it time out instead.
    downstream.client_got_first_chunk.clear()
    received = b""
    with httpx.stream("GET", f"{gateway.url}{PREFIX}/stream-out", timeout=WAIT * 2) as response:
        for chunk in response.iter_raw():
            received += chunk
            if b"first;" in received:
                downstream.client_got_first_chunk.set()
    assert received == b"first;second"


def test_request_body_streams(gateway: ServerProcess, downstream: Downstream) -> None:
    # The client sends its second chunk only once the service has the first.
    downstream.first_chunk_received.clear()
    waited_in_vain = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"x" * 65536
        if not downstream.first_chunk_received.wait(WAIT):
            waited_in_vain.set()
        yield b"y" * 65536

    response = httpx.post(f"{gateway.url}{PREFIX}/stream-in", content=body(), timeout=WAIT * 2)
    assert response.status_code == 200, response.text
    assert response.json()["length"] == 131072
    assert not waited_in_vain.is_set(), "the gateway buffered the request body"


def test_large_body_streams_without_buffering(
    gateway: ServerProcess, downstream: Downstream
) -> None:
    size = 48 * 1024 * 1024
    process = psutil.Process(gateway.process.pid)
    before = process.memory_info().rss

    def body() -> Iterator[bytes]:
        chunk = b"z" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    response = httpx.post(f"{gateway.url}{PREFIX}/stream-in", content=body(), timeout=60)
    assert response.json()["length"] == size
    growth = process.memory_info().rss - before
    assert growth < size / 2, f"gateway grew by {growth} bytes for a {size}-byte body"


def test_hop_by_hop_headers_dropped_and_forwarding_headers_added(
    gateway: ServerProcess, downstream: Downstream
) -> None:
    response = httpx.post(
        f"{gateway.url}{PREFIX}/echo",
        content=b"{}",
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "1",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic eA==",
            "TE": "trailers",
            "X-Custom": "kept",
        },
        timeout=10,
    )
    seen = response.json()["headers"]
    for dropped in ("x-private-hop", "keep-alive", "proxy-authorization", "te"):
        assert dropped not in seen, dropped
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-request-id"] == response.headers["x-request-id"]


def test_request_id_passes_through(gateway: ServerProcess, downstream: Downstream) -> None:
    response = httpx.post(
        f"{gateway.url}{PREFIX}/echo", content=b"", headers={"X-Request-ID": "trace-42"}
    )
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["headers"]["x-request-id"] == "trace-42"


def test_request_id_created_when_absent(gateway: ServerProcess) -> None:
    first = httpx.get(f"{gateway.url}/api/health").headers["x-request-id"]
    second = httpx.get(f"{gateway.url}/api/health").headers["x-request-id"]
    assert first and second and first != second


@pytest.fixture(scope="module")
def small_gateway(downstream: Downstream, tmp_path_factory) -> Iterator[ServerProcess]:
    server = start_server(
        "gateway",
        tmp_path_factory.mktemp("small"),
        env={"EASEL_IMAGE_UTILS_URL": downstream.url, "EASEL_MAX_BODY_MB": "0.01"},
    )
    yield server
    server.stop()


def test_body_over_limit_by_content_length_is_413(small_gateway: ServerProcess) -> None:
    response = httpx.post(f"{small_gateway.url}{PREFIX}/echo", content=b"a" * 20000)
    assert_envelope(response, 413, "payload_too_large")


def test_chunked_body_over_limit_is_413(small_gateway: ServerProcess) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(5):
            yield b"a" * 5000

    response = httpx.post(f"{small_gateway.url}{PREFIX}/stream-in", content=body())
    assert_envelope(response, 413, "payload_too_large")


def test_security_headers_on_every_response(gateway: ServerProcess) -> None:
    for response in (
        httpx.get(f"{gateway.url}/api/health"),
        httpx.get(f"{gateway.url}/no/such/path"),
        httpx.post(f"{gateway.url}{PREFIX}/echo", content=b""),
        httpx.post(f"{gateway.url}{PREFIX}/bare-500"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_cors_allows_only_configured_origins(gateway: ServerProcess) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = httpx.options(
        f"{gateway.url}{PREFIX}/resize", headers={"Origin": "https://app.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    refused = httpx.options(
        f"{gateway.url}{PREFIX}/resize", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = httpx.get(f"{gateway.url}/api/health", headers={"Origin": "https://app.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"


def test_unknown_path_and_wrong_method_get_envelopes(gateway: ServerProcess) -> None:
    assert_envelope(httpx.get(f"{gateway.url}/api/nope"), 404, "not_found")
    assert_envelope(httpx.post(f"{gateway.url}/api/health"), 405, "method_not_allowed")


def test_timeout_then_normal_request_still_works(gateway: ServerProcess) -> None:
    assert httpx.post(f"{gateway.url}{PREFIX}/slow", timeout=10).status_code == 504
    assert httpx.post(f"{gateway.url}{PREFIX}/echo", content=b"").status_code == 200
