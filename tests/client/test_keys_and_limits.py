"""A server with API keys and a low rate limit: the key sent or not, and the gateway's own
429 as the SDK reports it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from easel.client import AsyncClient, Client, RateLimited, Unauthorized
from tests.support.servers import ServerProcess, start_server

KEY = "client-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("client-keys")
    env = {"EASEL_API_KEYS": KEY, "EASEL_RATE_LIMIT_UTILS": "2"}
    process = start_server("all", tmp, env=env)
    try:
        yield process
    finally:
        process.stop()


def test_without_the_key_is_unauthorized(server: ServerProcess) -> None:
    with Client(server.url) as client, pytest.raises(Unauthorized) as caught:
        client.jobs()
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert caught.value.message and caught.value.request_id
    with Client(server.url, api_key="wrong") as client, pytest.raises(Unauthorized):
        client.styles()


async def test_with_the_key(server: ServerProcess) -> None:
    with Client(server.url, api_key=KEY) as client:
        assert client.jobs().jobs == []
    async with AsyncClient(server.url, api_key=KEY) as aclient:
        assert isinstance(await aclient.styles(), list)


def test_the_gateways_429_carries_retry_after(server: ServerProcess) -> None:
    with Client(server.url, api_key=KEY, retries=1, max_retry_wait=0.01) as client:
        with pytest.raises(RateLimited) as caught:
            for _ in range(4):  # 2 a minute: the third is refused, and its retry too
                client.resize(Image.new("RGB", (8, 8)), scale=2)
    error = caught.value
    assert error.status == 429 and error.code == "too_many_requests"
    assert error.retry_after is not None and 0 < error.retry_after <= 60
    assert error.details and error.request_id
