"""A real webhook receiver over loopback HTTP that records what it is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.downstream import serving_in_thread
from tests.support.servers import free_port


@dataclass
class Receiver:
    """Records every POST to `/hook`; with `fail_first`, answers 500 to the first (so the
    sender retries) and 200 afterwards."""

    port: int = field(default_factory=free_port)
    fail_first: bool = False
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.seen.append((dict(request.headers), body))
                refuse = self.fail_first and len(self.seen) == 1
            return JSONResponse({"ok": not refuse}, status_code=500 if refuse else 200)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def wait_for(self, count: int, *, wait: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.seen) >= count:
                    return list(self.seen)
            time.sleep(0.02)
        raise AssertionError(f"the receiver got {len(self.seen)} requests, not {count}")


@contextmanager
def running_receiver(*, fail_first: bool = False) -> Iterator[Receiver]:
    receiver = Receiver(fail_first=fail_first)
    with serving_in_thread(receiver.app(), receiver.port):
        yield receiver
