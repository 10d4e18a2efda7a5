"""A loop whose cancellation a library swallowed still stops (`stop_if_cancelled`)."""

from __future__ import annotations

import asyncio

import pytest

from easel.jobs.cancelling import stop_if_cancelled

DEADLINE = 10.0


async def test_a_loop_whose_cancel_was_swallowed_still_stops() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            stop_if_cancelled()
            rounds += 1
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass  # what a library swallowing the cancel looks like from here

    task = asyncio.create_task(loop())
    while rounds < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE)


async def test_a_task_not_asked_to_stop_goes_on() -> None:
    stop_if_cancelled()  # returns: nobody cancelled this task
