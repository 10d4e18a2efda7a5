"""Job store fixtures: every conformance test runs on each backend.

Redis: the session's server (`redis_url`, tests/conftest.py). Each test's stores share a
key prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from easel.jobs.store.redis import RedisJobStore
from easel.jobs.store.sqlite import SQLiteJobStore
from tests.support.redis_server import RedisServer

BACKENDS = ["sqlite", "redis"]

StoreFactory = Callable[[], Awaitable[object]]


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
