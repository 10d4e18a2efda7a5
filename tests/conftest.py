"""Shared fixtures. The API suite runs once per topology:

- all-in-one: `easel serve all`, every service in the gateway's process;
- split: each service its own `easel serve <service>` process, the gateway calling them by URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import session_redis
from tests.support.servers import Stack, running_stack

TOPOLOGIES = ("all-in-one", "split")


@pytest.fixture(scope="session", params=TOPOLOGIES)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp(str(request.param))
    with running_stack(str(request.param), tmp) as running:
        yield running


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the whole session (`REDIS_URL`, or one started for it)."""
    with session_redis() as url:
        yield url


@pytest.fixture()
def api(stack: Stack) -> Iterator[httpx.Client]:
    """A client of the gateway of the current topology."""
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client
