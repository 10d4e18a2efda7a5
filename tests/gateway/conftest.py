from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from tests.support.downstream import Downstream, running_downstream
from tests.support.redis_server import redis_keys
from tests.support.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def downstream() -> Iterator[Downstream]:
    with running_downstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    downstream: Downstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A gateway process whose image-utils is the test downstream, with a 0.5 s timeout."""
    server = start_server(
        "gateway",
        tmp_path_factory.mktemp("gateway"),
        env={
            "EASEL_IMAGE_UTILS_URL": downstream.url,
            "EASEL_IMAGE_UTILS_TIMEOUT": "0.5",
            "EASEL_CORS_ORIGINS": '["https://app.example"]',
        },
    )
    yield server
    server.stop()


@pytest.fixture()
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A Redis key prefix of this test's own, its keys deleted afterwards."""
    prefix = f"easel-test-rl-{uuid.uuid4().hex}"
    yield prefix
    if keys := await redis_keys(redis_url, prefix):
        async with redis.asyncio.Redis.from_url(redis_url) as client:
            await client.delete(*keys)
