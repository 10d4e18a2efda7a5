"""Two gateway processes count against one Redis-backed limit (issue 17, item 3): what
one lets through, the other counts, so together they allow exactly the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess, start_server

LIMIT = 5


@pytest.fixture()
def gateways(tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[list[ServerProcess]]:
    env = {
        "EASEL_RATE_LIMIT_REDIS_URL": redis_url,
        "EASEL_RATE_LIMIT_REDIS_PREFIX": redis_prefix,
        "EASEL_RATE_LIMIT_OTHER": str(LIMIT),
        "EASEL_JOBS_IN_PROCESS_WORKER": "false",
    }
    started: list[ServerProcess] = []
    try:
        for name in ("first", "second"):  # each with a data dir of its own
            (tmp_path / name).mkdir()
            started.append(start_server("all", tmp_path / name, env=env))
        yield started
    finally:
        for server in started:
            server.stop()


def test_two_gateways_share_one_redis_backed_limit(gateways: list[ServerProcess]) -> None:
    answers: list[tuple[int, httpx.Response]] = []
    for turn in range(2 * LIMIT + 2):
        which = turn % 2
        answers.append((which, httpx.get(f"{gateways[which].url}/no-such-path", timeout=30)))
    allowed = [(which, a) for which, a in answers if a.status_code == 404]
    refused = [a for _, a in answers if a.status_code == 429]
    assert len(allowed) == LIMIT, [a.status_code for _, a in answers]
    assert len(refused) == len(answers) - LIMIT
    assert {which for which, _ in allowed} == {0, 1}  # both gateways let some through
    # One count: what is left goes down across both processes.
    remaining = [int(a.headers["ratelimit-remaining"]) for _, a in allowed]
    assert remaining == list(range(LIMIT - 1, -1, -1))
    for answer in refused:
        assert answer.json()["error"]["details"] == {
            "route_class": "other",
            "limit": LIMIT,
            "window_seconds": 60,
            "retry_after": int(answer.headers["retry-after"]),
        }
