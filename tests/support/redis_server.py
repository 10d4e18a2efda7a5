"""Real `redis-server` processes for tests: the session's (`REDIS_URL` when set, else one
started without persistence on a free port) and dedicated ones a test stops and starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import redis.asyncio

from tests.support.servers import free_port


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        pytest.fail(
            "the Redis tests need a Redis server: install redis-server"
            " (e.g. `apt-get install redis-server`) or set REDIS_URL=redis://host:port/db",
            pytrace=False,
        )
    return found


class RedisServer:
    """A `redis-server` process on a loopback port; `stop()` and `start()` keep the port."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        command = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on {self.port}") from None
                    time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def session_redis() -> Iterator[str]:
    """`REDIS_URL`, or the URL of a server started for the block."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer("--save", "", "--appendonly", "no")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


async def redis_keys(url: str, prefix: str) -> list[bytes]:
    """Every key under `prefix` (`prefix:...`)."""
    async with redis.asyncio.Redis.from_url(url) as client:
        return [key async for key in client.scan_iter(match=f"{prefix}:*")]
