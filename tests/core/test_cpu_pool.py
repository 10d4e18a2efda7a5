"""CpuPool: CPU work in a bounded set of threads, a bounded queue in front of it (503 with
Retry-After beyond), and queued work dropped when its client has gone. Ordering and
progress are observed through the pool's counters, never through time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from easel.core.cpu_pool import CpuPool
from easel.core.errors import ClientGone, ServiceUnavailable

DEADLINE = 60.0  # generous: only a broken pool gets near it


class Gate:
    """A blocking job: records that it ran, then waits until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls = 0

    def job(self, value: int) -> int:
        self.calls += 1
        self.entered.set()
        assert self.opened.wait(DEADLINE)
        return value * 2


def request_with(receive: Callable[[], Awaitable[Message]]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


class Client:
    """An ASGI receive channel whose client can leave on demand."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not condition():
            await asyncio.sleep(0.01)


async def test_work_runs_in_a_thread_while_the_loop_stays_responsive() -> None:
    pool, gate = CpuPool(workers=1, max_waiting=0), Gate()
    running = asyncio.ensure_future(pool.run(gate.job, 21))
    await until(gate.entered.is_set)
    # The job holds its thread; the loop still runs other coroutines.
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 5 and not running.done()
    assert pool.stats() == {"workers": 1, "running": 1, "waiting": 0}
    gate.opened.set()
    assert await running == 42
    assert pool.stats()["running"] == 0
    pool.close()


async def test_beyond_the_workers_requests_wait_in_order() -> None:
    pool, gate = CpuPool(workers=1, max_waiting=2), Gate()
    order: list[int] = []

    def record(value: int) -> int:
        order.append(value)
        return value

    first = asyncio.ensure_future(pool.run(gate.job, 1))
    await until(gate.entered.is_set)
    later = [asyncio.ensure_future(pool.run(record, n)) for n in (2, 3)]
    await until(lambda: pool.stats()["waiting"] == 2)
    assert order == []  # nothing overtakes the running job
    gate.opened.set()
    assert await first == 2 and [await t for t in later] == [2, 3]
    assert order == [2, 3]
    pool.close()


async def test_a_full_queue_answers_503_with_retry_after() -> None:
    pool, gate = CpuPool(workers=1, max_waiting=1), Gate()
    first = asyncio.ensure_future(pool.run(gate.job, 1))
    await until(gate.entered.is_set)
    queued = asyncio.ensure_future(pool.run(gate.job, 2))
    await until(lambda: pool.stats()["waiting"] == 1)
    with pytest.raises(ServiceUnavailable) as info:
        await pool.run(gate.job, 3)
    assert info.value.headers["Retry-After"] == "1"
    assert "busy" in info.value.message
    gate.opened.set()
    assert (await first, await queued) == (2, 4)
    assert gate.calls == 2
    pool.close()


async def test_queued_work_whose_client_left_never_runs() -> None:
    pool, gate = CpuPool(workers=1, max_waiting=4), Gate()
    first = asyncio.ensure_future(pool.run(gate.job, 1))
    await until(gate.entered.is_set)
    client = Client()
    queued = asyncio.ensure_future(pool.run(gate.job, 2, request=request_with(client.receive)))
    await until(lambda: pool.stats()["waiting"] == 1)
    client.gone.set()
    with pytest.raises(ClientGone):
        await queued  # answered while the first job still holds the only thread
    assert not first.done() and pool.stats()["waiting"] == 0
    gate.opened.set()
    assert await first == 2
    assert gate.calls == 1  # the abandoned job never started
    pool.close()


async def test_a_waiting_request_that_is_cancelled_frees_its_place() -> None:
    # In-process, the gateway cancels the service's handler when its client leaves.
    pool, gate = CpuPool(workers=1, max_waiting=1), Gate()
    first = asyncio.ensure_future(pool.run(gate.job, 1))
    await until(gate.entered.is_set)
    queued = asyncio.ensure_future(pool.run(gate.job, 2))
    await until(lambda: pool.stats()["waiting"] == 1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert pool.stats()["waiting"] == 0
    gate.opened.set()
    assert await first == 2 and await pool.run(lambda: 7) == 7
    assert gate.calls == 1
    pool.close()


async def test_a_started_job_finishes_and_holds_its_thread_until_then() -> None:
    pool, gate = CpuPool(workers=1, max_waiting=1), Gate()
    client = Client()
    running = asyncio.ensure_future(pool.run(gate.job, 5, request=request_with(client.receive)))
    await until(gate.entered.is_set)
    client.gone.set()
    await asyncio.sleep(0)
    assert pool.stats()["running"] == 1  # a started job is not interrupted; it is bounded
    gate.opened.set()
    assert await running == 10
    await until(lambda: pool.stats()["running"] == 0)
    pool.close()


async def test_errors_of_the_work_reach_the_caller() -> None:
    pool = CpuPool(workers=2, max_waiting=0)

    def broken(_: Any) -> None:
        raise ValueError("bad mask")

    with pytest.raises(ValueError, match="bad mask"):
        await pool.run(broken, 1)
    assert pool.stats() == {"workers": 2, "running": 0, "waiting": 0}
    pool.close()
