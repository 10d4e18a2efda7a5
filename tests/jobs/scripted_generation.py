"""A generation service stand-in for worker tests: a bare ASGI app answering each
`POST /api/generate/stream` with the next of the scripts given for the request's prompt,
byte for byte, through `StreamingASGITransport` (so chunks arrive as they are sent), and
`GET /api/health` with the next of `health` (the last one repeats; "down": no connection
at all, as if the process were gone)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.image_store import ImageStore
from easel.jobs.store.base import JobStore
from easel.jobs.worker import Worker, WorkerConfig
from tests.jobs.test_store_conformance import NOW

IMAGE = b"\x89PNG not really"
IMAGE_B64 = base64.b64encode(IMAGE).decode()


def sse(data: dict[str, Any], *, event_id: int | None = None) -> bytes:
    """One event the way the generation service (sse-starlette) writes it."""
    head = f"id: {event_id}\r\n" if event_id is not None else ""
    return f"{head}event: {data['type']}\r\ndata: {json.dumps(data)}\r\n\r\n".encode()


def result(seed: int) -> dict[str, Any]:
    image = {"image": IMAGE_B64, "seed": seed, "format": "png"}
    return {"type": "result", "result": {"images": [image], "seed": seed}}


class ScriptedGeneration:
    """`scripts[prompt]` is a list of answers, one per request with that prompt, in turn;
    an answer is the raw chunks of its event stream."""

    def __init__(
        self, scripts: dict[str, list[list[bytes]]], *, health: list[str] | None = None
    ) -> None:
        self.scripts = {prompt: list(answers) for prompt, answers in scripts.items()}
        self.health = list(health or ["healthy"])
        self.asked: list[str] = []
        self.health_polls = 0

    def next_health(self) -> str:
        self.health_polls += 1
        return self.health.pop(0) if len(self.health) > 1 else self.health[0]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        if scope["path"] == "/api/health":
            body = json.dumps({"status": self.next_health(), "service": "generation"}).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        assert scope["path"] == "/api/generate/stream"
        prompt = json.loads(await Request(scope, receive).body())["prompt"]
        self.asked.append(prompt)
        chunks = self.scripts[prompt].pop(0)
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=_Transport(self), base_url="http://generation")


class _Transport(StreamingASGITransport):
    """Refuses to connect while the service's health script says "down"."""

    def __init__(self, generation: ScriptedGeneration) -> None:
        super().__init__(generation)
        self.generation = generation

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.generation.health[0] == "down":
            if request.url.path == "/api/health":
                self.generation.next_health()
            raise httpx.ConnectError("connection refused", request=request)
        return await super().handle_async_request(request)


async def run_jobs(
    store: JobStore,
    tmp_path: Path,
    generation: ScriptedGeneration,
    config: WorkerConfig | None = None,
) -> None:
    """One worker on `store`, generating through `generation`, until no job is left."""
    async with generation.client() as client:
        worker = Worker(
            store=store,
            results=ImageStore(tmp_path / "results"),
            generation=client,
            config=config or WorkerConfig(retry_backoff_s=0),
            clock=lambda: NOW,
        )
        await worker.run_until_idle()
