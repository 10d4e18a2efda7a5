"""Retries and errors against a scripted loopback server, with both clients: 429 and 503
retried after their Retry-After (capped), other errors raised at once with the envelope."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from easel.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unavailable,
)
from easel.client.errors import retry_after_seconds
from tests.client.scripted_server import Answer, envelope, scripted
from tests.support.servers import free_port

OK = Answer(200, {"styles": ["cinematic"]})
KINDS = ["sync", "async"]


def styles(kind: str, url: str, **options: Any) -> list[str]:
    """`styles()` with the client of `kind`."""
    if kind == "sync":
        with Client(url, **options) as client:
            return client.styles()

    async def run() -> list[str]:
        async with AsyncClient(url, **options) as client:
            return await client.styles()

    return asyncio.run(run())


@pytest.mark.parametrize("kind", KINDS)
def test_429_is_retried_after_its_retry_after(kind: str) -> None:
    limited = Answer(429, envelope("too_many_requests", "slow down"), {"Retry-After": "1"})
    with scripted(limited, OK) as script:
        assert styles(kind, script.url) == ["cinematic"]
    assert script.count == 2
    assert script.gaps()[0] >= 0.95  # it waited the header's second (a lower bound only)


@pytest.mark.parametrize("kind", KINDS)
def test_503_is_retried_and_a_long_retry_after_is_capped(kind: str) -> None:
    down = Answer(503, envelope("service_unavailable", "busy"), {"Retry-After": "3600"})
    with scripted(down, down, OK) as script:
        assert styles(kind, script.url, max_retry_wait=0.05) == ["cinematic"]
    assert script.count == 3


@pytest.mark.parametrize("kind", KINDS)
def test_retries_run_out_with_the_last_error(kind: str) -> None:
    limited = Answer(429, envelope("too_many_requests", "slow down"), {"Retry-After": "0"})
    with scripted(limited) as script, pytest.raises(RateLimited) as caught:
        styles(kind, script.url, retries=2)
    assert script.count == 3
    assert caught.value.status == 429 and caught.value.retry_after == 0


@pytest.mark.parametrize("kind", KINDS)
def test_no_retry_at_all_with_zero_retries(kind: str) -> None:
    down = Answer(503, envelope("service_unavailable", "busy"), {"Retry-After": "0"})
    with scripted(down) as script, pytest.raises(Unavailable):
        styles(kind, script.url, retries=0)
    assert script.count == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFound), (422, InvalidRequest), (400, InvalidRequest)]
)
def test_other_errors_are_not_retried_and_carry_the_envelope(
    kind: str, status: int, error: type[Exception]
) -> None:
    details = [{"field": "steps", "message": "too many"}]
    body = envelope("some_code", "what went wrong", details, request_id="abc123")
    with scripted(Answer(status, body)) as script, pytest.raises(error) as caught:
        styles(kind, script.url)
    assert script.count == 1
    raised: Any = caught.value
    assert (raised.status, raised.code, raised.message) == (status, "some_code", "what went wrong")
    assert raised.details == details and raised.request_id == "abc123"


@pytest.mark.parametrize("kind", KINDS)
def test_an_answer_without_an_envelope_is_still_an_api_error(kind: str) -> None:
    plain = Answer(502, b"bad gateway", content_type="text/plain")
    with scripted(plain) as script, pytest.raises(Unavailable) as caught:
        styles(kind, script.url)
    assert caught.value.code == "http_502" and "bad gateway" in caught.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_no_server_is_a_connection_failure(kind: str) -> None:
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        styles(kind, f"http://127.0.0.1:{free_port()}", max_retry_wait=0.01)


def test_the_key_is_sent_as_a_bearer_token() -> None:
    with scripted(OK) as script:
        styles("sync", script.url, api_key="secret-key")
    headers = {name.lower(): value for name, value in script.seen[0][3].items()}
    assert headers["authorization"] == "Bearer secret-key"


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None


def job_answers() -> tuple[Answer, ...]:
    """A job's stream that ends (a dropped proxy) after one progress event, then its status
    (done) and result."""
    progress = b'event: progress\nid: 3\ndata: {"type": "progress", "step": 1, "total": 2}\n\n'
    return (
        Answer(503, envelope("service_unavailable", "busy"), {"Retry-After": "0"}),
        Answer(200, progress, content_type="text/event-stream"),
        Answer(200, {"task_id": "t1", "status": "done", "progress": {"step": 2, "total": 2}}),
        Answer(200, {"task_id": "t1", "seed": 3, "images": []}),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_wait_falls_back_to_the_status_when_the_stream_drops(kind: str) -> None:
    seen: list[object] = []
    with scripted(*job_answers()) as script:
        if kind == "sync":
            with Client(script.url) as client:
                out = client.wait("t1", timeout=60, on_progress=seen.append)
        else:

            async def run() -> Any:
                async with AsyncClient(script.url) as client:
                    return await client.wait("t1", timeout=60, on_progress=seen.append)

            out = asyncio.run(run())
    assert out.task_id == "t1" and out.seed == 3
    paths = [path for _, _, path, _ in script.seen]
    assert paths == ["/api/generate/events/t1"] * 2 + [
        "/api/generate/status/t1",
        "/api/generate/result/t1",
    ]
    assert [(e.step, e.total) for e in seen] == [(1, 2)]  # type: ignore[attr-defined]
