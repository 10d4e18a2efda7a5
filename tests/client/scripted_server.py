"""A loopback HTTP server that answers from a script: each request gets the next answer
(the last one repeats), and the server notes when each request came."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def envelope(code: str, message: str, details: Any = None, request_id: str = "req-1") -> Any:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error, "request_id": request_id}


@dataclass
class Script:
    answers: list[Answer]
    seen: list[tuple[float, str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def next_answer(self) -> Answer:
        index = min(len(self.seen) - 1, len(self.answers) - 1)
        return self.answers[index]

    @property
    def count(self) -> int:
        return len(self.seen)

    def gaps(self) -> list[float]:
        times = [seen[0] for seen in self.seen]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


@contextmanager
def scripted(*answers: Answer) -> Iterator[Script]:
    script = Script(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append((time.monotonic(), self.command, self.path, dict(self.headers)))
            answer = script.next_answer()
            payload = answer.payload()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
