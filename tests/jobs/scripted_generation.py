"""A generation service stand-in for worker tests: a bare ASGI app answering each
`POST /api/generate/stream` with the next of the scripts given for the request's prompt,
byte for byte, through `StreamingASGITransport` (so chunks arrive as they are sent)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from starlette.requests import Request

from easel.core.asgi_transport import StreamingASGITransport

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

    def __init__(self, scripts: dict[str, list[list[bytes]]]) -> None:
        self.scripts = {prompt: list(answers) for prompt, answers in scripts.items()}
        self.asked: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http" and scope["path"] == "/api/generate/stream"
        prompt = json.loads(await Request(scope, receive).body())["prompt"]
        self.asked.append(prompt)
        chunks = self.scripts[prompt].pop(0)
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=StreamingASGITransport(self), base_url="http://generation"
        )
