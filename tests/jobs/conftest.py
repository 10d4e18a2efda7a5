"""Job store fixtures: every conformance test runs on each backend.

Redis: `REDIS_URL` when set, else a `redis-server` this session starts (no persistence) on
a free port. Each test's stores share a key prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from easel.jobs.store.redis import RedisJobStore
from easel.jobs.store.sqlite import SQLiteJobStore

BACKENDS = ["sqlite", "redis"]

StoreFactory = Callable[[], Awaitable[object]]


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        pytest.fail(
            "the Redis job store tests need a Redis server: install redis-server"
            " (e.g. `apt-get install redis-server`) or set REDIS_URL=redis://host:port/db",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the whole session."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer("--save", "", "--appendonly", "no")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture()
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Starts dedicated `redis-server`s (extra arguments as given); stops them afterwards."""
    servers: list[RedisServer] = []

    def start(*args: str) -> RedisServer:
        server = RedisServer(*args)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


async def delete_prefix(url: str, prefix: str) -> None:
    async with redis.asyncio.Redis.from_url(url) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)


@pytest.fixture(params=BACKENDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of stores sharing one backend (several connections, as several processes)."""
    opened: list[SQLiteJobStore | RedisJobStore] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    prefix = f"easel-test-{uuid.uuid4().hex}"

    async def open_one():
        store: SQLiteJobStore | RedisJobStore
        if request.param == "sqlite":
            store = await SQLiteJobStore.open(tmp_path / "jobs.db")
        elif request.param == "redis":
            store = await RedisJobStore.connect(url, prefix=prefix)
        else:  # pragma: no cover - other backends register here
            raise AssertionError(request.param)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()
    if url:
        await delete_prefix(url, prefix)


@pytest.fixture()
async def store(open_store):
    return await open_store()
