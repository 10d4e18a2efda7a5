"""ClientWatch: the block is abandoned when the client disconnects, and only then."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from easel.gateway.client_watch import ClientGone, ClientWatch

DEADLINE = 10.0


class Client:
    """The ASGI receive of a request whose body is in; `leave()` disconnects it."""

    def __init__(self) -> None:
        self.left = asyncio.Event()

    def leave(self) -> None:
        self.left.set()

    async def receive(self) -> Message:
        await self.left.wait()
        return {"type": "http.disconnect"}


def body_sent() -> asyncio.Event:
    sent = asyncio.Event()
    sent.set()
    return sent


async def test_a_client_leaving_abandons_the_exchange() -> None:
    client = Client()
    started, cleaned_up = asyncio.Event(), asyncio.Event()

    async def exchange() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # a service that never answers
        finally:
            cleaned_up.set()
        return "answer"

    async def proxied() -> str:
        with ClientWatch(client.receive, body_sent()):
            return await exchange()

    task = asyncio.create_task(proxied())
    await asyncio.wait_for(started.wait(), DEADLINE)
    client.leave()
    with pytest.raises(ClientGone):
        await asyncio.wait_for(task, DEADLINE)
    assert cleaned_up.is_set()
    assert task.cancelling() == 0  # the watch's cancel was taken back


async def test_an_answer_before_the_client_leaves_is_returned() -> None:
    client = Client()
    with ClientWatch(client.receive, body_sent()):
        answer = await asyncio.sleep(0, "answer")
    assert answer == "answer"
    client.leave()  # after the block: nothing is cancelled any more
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_no_watch_before_the_body_is_sent() -> None:
    # While the body is still being read, a disconnect is the body reader's to see.
    client = Client()
    client.leave()
    with ClientWatch(client.receive, asyncio.Event()):
        for _ in range(5):
            await asyncio.sleep(0)


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    client = Client()
    started = asyncio.Event()

    async def proxied() -> None:
        with ClientWatch(client.receive, body_sent()):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(proxied())
    await asyncio.wait_for(started.wait(), DEADLINE)
    task.cancel()
    client.leave()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE)
