"""The batcher's dispatch, against an engine whose calls run until the test releases them:
a lone request starts at once (the window is never waited on an idle engine), requests
arriving during a call go into the next one, a call's answered requests are waited for at
most the window, several calls run at once up to `concurrent_calls`, cancel reaches the
right call, and shutdown answers everyone.

Nothing here measures time: the batcher reads an injected clock that only the test moves,
and every wait is on an event with a generous deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

from PIL import Image

from easel.core.events import Loading, Queued, Started
from easel.generation.batching import Batcher, Outcome, Ticket, TicketState
from easel.generation.engines.base import (
    CallKey,
    CancelledFn,
    Engine,
    EngineCall,
    EngineCapabilities,
    EngineItem,
    EngineOutput,
    ItemProgress,
    ProgressFn,
)

WAIT = 30.0  # a deadline for what must happen, never a measurement
WINDOW_S = 60.0  # far longer than any test: waiting it out would time the test out


def key(name: str = "a", *, shares: bool = True) -> CallKey:
    return CallKey(name, "text-to-image", 8, 8, steps=2, guidance_scale=0.0, shares=shares)


def item(images: int = 1) -> EngineItem:
    return EngineItem(prompt="p", negative_prompt=None, seed=1, num_images=images)


class Clock:
    """The batcher's clock: still unless the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class Held:
    """One call inside the engine, running until released."""

    call: EngineCall
    cancelled: CancelledFn
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def requests(self) -> int:
        return len(self.call.items)


class HeldEngine:
    name = "held"

    def __init__(self, concurrent_calls: int = 1) -> None:
        self.capabilities = EngineCapabilities(concurrent_calls=concurrent_calls)
        self.loaded = True
        self.broken: str | None = None  # "raises" or "short" (an image list missing)
        self.started: asyncio.Queue[Held] = asyncio.Queue()
        self.running: list[Held] = []

    def is_loaded(self, model: str) -> bool:
        return self.loaded

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        held = Held(call, cancelled)
        self.running.append(held)
        self.started.put_nowait(held)
        progress([ItemProgress(1, 2) for _ in call.items])
        try:
            await held.release.wait()
        finally:
            self.running.remove(held)
        if self.broken == "raises":
            raise RuntimeError("the engine broke")
        image = Image.new("RGB", (8, 8))
        images = [[image] * entry.num_images for entry in call.items]
        if self.broken == "short":
            images.pop()
        return EngineOutput(images=images, steps_run=1, interrupted=cancelled())

    async def next_call(self) -> Held:
        return await asyncio.wait_for(self.started.get(), WAIT)

    def nothing_started(self) -> bool:
        return self.started.empty()


@asynccontextmanager
async def dispatching(
    engine: HeldEngine, clock: Clock, *, max_images: int = 8
) -> AsyncIterator[Batcher]:
    batcher = Batcher(
        engine=cast(Engine, engine),
        window_s=WINDOW_S,
        max_batch_images=max_images,
        max_pending=16,
        clock=clock,
    )
    task = asyncio.create_task(batcher.run())
    try:
        yield batcher
    finally:
        for held in engine.running:
            held.release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def outcome(ticket: Ticket) -> Outcome:
    return await asyncio.wait_for(asyncio.shield(ticket.outcome), WAIT)


def events(ticket: Ticket) -> list[object]:
    found = []
    while not ticket.events.empty():
        found.append(ticket.events.get_nowait())
    return found


async def settle() -> None:
    """Let the dispatcher act on what just happened (it needs a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_lone_request_on_an_idle_engine_starts_without_the_window() -> None:
    engine, clock = HeldEngine(), Clock()
    async with dispatching(engine, clock) as batcher:
        first = batcher.submit(key(), item())
        held = await engine.next_call()  # the clock has not moved: no window was waited
        assert first.started_at == clock.now and held.requests == 1
        held.release.set()
        assert (await outcome(first)).queue_wait_s == 0.0
        # The same client's next request: its last call answered only itself, so nobody
        # else is expected back and it starts at once too.
        second = batcher.submit(key(), item())
        (await engine.next_call()).release.set()
        assert (await outcome(second)).batch_requests == 1
        assert batcher.calls == 2


async def test_requests_arriving_during_a_call_go_into_the_next_call() -> None:
    engine, clock = HeldEngine(), Clock()
    async with dispatching(engine, clock) as batcher:
        first = batcher.submit(key("a"), item())
        running = await engine.next_call()
        later = [batcher.submit(key("b"), item(), listening=True) for _ in range(2)]
        assert batcher.waiting == 2 and batcher.pending == 3
        assert [events(t) for t in later] == [
            [Queued(position=0, request_id=later[0].id)],
            [Queued(position=1, request_id=later[1].id)],
        ]
        running.release.set()
        assert (await outcome(first)).batch_requests == 1
        together = await engine.next_call()
        assert together.requests == 2
        assert all(Started(batch_size=2, batch_requests=2) in events(t) for t in later)
        together.release.set()
        assert [(await outcome(t)).batch_requests for t in later] == [2, 2]
        assert batcher.pending == 0


async def test_the_next_batch_waits_for_the_answered_requests_at_most_the_window() -> None:
    engine, clock = HeldEngine(), Clock()
    async with dispatching(engine, clock) as batcher:
        batcher.submit(key(), item())
        running = await engine.next_call()
        waiting = [batcher.submit(key(), item()) for _ in range(2)]
        running.release.set()
        await settle()
        # Three of this kind were in circulation; two wait: the one answered may be back.
        assert engine.nothing_started() and batcher.waiting == 2
        back = batcher.submit(key(), item())  # it is: the batch is whole, and starts
        call = await engine.next_call()
        assert call.requests == 3
        call.release.set()
        assert {(await outcome(t)).batch_requests for t in [*waiting, back]} == {3}

        # Three answered; one comes back, the others never do: it waits, but only until
        # the window after that call's end has passed.
        alone = batcher.submit(key(), item())
        await settle()
        assert engine.nothing_started() and alone.state is TicketState.WAITING
        clock.now += WINDOW_S
        other = batcher.submit(key("b"), item())  # any wake-up sees the window has passed
        call = await engine.next_call()
        assert call.requests == 1 and alone.state is TicketState.RUNNING
        assert other.state is TicketState.WAITING  # one slot: the other kind waits its turn
        call.release.set()
        (await engine.next_call()).release.set()
        assert (await outcome(other)).batch_requests == 1


async def test_a_request_that_cannot_share_and_the_image_limit_make_calls_of_their_own() -> None:
    engine, clock = HeldEngine(), Clock()
    async with dispatching(engine, clock, max_images=4) as batcher:
        batcher.submit(key("x"), item())
        blocker = await engine.next_call()
        lone = [batcher.submit(key(shares=False), item()) for _ in range(2)]
        big = [batcher.submit(key(), item(3)) for _ in range(2)]
        blocker.release.set()
        sizes = []
        for _ in range(4):
            call = await engine.next_call()
            sizes.append(call.call.num_images)
            call.release.set()
        assert sizes == [1, 1, 3, 3]  # arrival order; 3 + 3 images exceed the limit of 4
        assert [(await outcome(t)).batch_requests for t in [*lone, *big]] == [1, 1, 1, 1]


async def test_loading_is_said_before_started_and_positions_move_up() -> None:
    engine, clock = HeldEngine(), Clock()
    engine.loaded = False
    async with dispatching(engine, clock) as batcher:
        first = batcher.submit(key("a"), item(), listening=True)
        running = await engine.next_call()
        second, third = (batcher.submit(key(k), item(), listening=True) for k in "bc")
        kinds = [type(event) for event in events(first)]
        assert kinds[:3] == [Queued, Loading, Started]
        engine.loaded = True
        running.release.set()
        (await engine.next_call()).release.set()  # the second's call
        await outcome(second)
        assert [e for e in events(third) if isinstance(e, Queued)] == [
            Queued(position=1, request_id=third.id),
            Queued(position=0, request_id=third.id),
        ]
        (await engine.next_call()).release.set()
        await outcome(third)


async def test_calls_that_cannot_merge_run_at_once_up_to_the_engines_slots() -> None:
    engine, clock = HeldEngine(concurrent_calls=2), Clock()
    async with dispatching(engine, clock) as batcher:
        a, b, c = (batcher.submit(key(k), item()) for k in "abc")
        first, second = await engine.next_call(), await engine.next_call()
        assert [h.call.key.model for h in (first, second)] == ["a", "b"]
        await settle()
        assert engine.nothing_started() and c.state is TicketState.WAITING
        assert (batcher.running_calls, batcher.waiting, batcher.pending) == (2, 1, 3)
        second.release.set()  # a slot frees: the third starts while the first still runs
        third = await engine.next_call()
        assert third.call.key.model == "c" and a.state is TicketState.RUNNING
        assert (await outcome(b)).error is None
        first.release.set()
        third.release.set()
        assert [(await outcome(t)).error for t in (a, c)] == [None, None]
        assert batcher.calls == 3 and batcher.pending == 0


async def test_cancel_reaches_the_right_call_and_a_waiting_request_never_starts() -> None:
    engine, clock = HeldEngine(concurrent_calls=2), Clock()
    async with dispatching(engine, clock) as batcher:
        a, b, c = (batcher.submit(key(k), item()) for k in "abc")
        first, second = await engine.next_call(), await engine.next_call()
        assert batcher.cancel(c)  # waiting
        assert (await outcome(c)).cancelled and batcher.waiting == 0
        assert batcher.cancel(a)  # running: answered at once, its call told to stop
        assert (await outcome(a)).cancelled
        assert first.cancelled() and not second.cancelled()
        # The cancelled call holds its slot (and counts) until the engine stops it.
        assert b.state is TicketState.RUNNING and batcher.pending == 2
        first.release.set()
        second.release.set()
        assert (await outcome(b)).images
        await settle()
        assert engine.nothing_started()  # the cancelled waiting one never ran
        assert batcher.calls == 2 and not batcher.cancel(a)


async def test_shutdown_answers_every_waiting_and_running_request() -> None:
    engine, clock = HeldEngine(concurrent_calls=2), Clock()
    batcher = Batcher(
        engine=cast(Engine, engine), window_s=WINDOW_S, max_batch_images=8, max_pending=16,
        clock=clock,
    )  # fmt: skip
    task = asyncio.create_task(batcher.run())
    tickets = [batcher.submit(key(k), item()) for k in "abc"]
    await engine.next_call()
    await engine.next_call()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    answers = [await outcome(ticket) for ticket in tickets]
    assert [answer.error and answer.error.code for answer in answers] == ["service_unavailable"] * 3
    assert batcher.pending == 0 and not engine.running


async def test_a_failing_call_fails_its_requests_and_the_next_call_runs() -> None:
    engine, clock = HeldEngine(), Clock()
    async with dispatching(engine, clock) as batcher:
        for broken in ("raises", "short"):
            engine.broken = broken
            ticket = batcher.submit(key(broken), item())
            (await engine.next_call()).release.set()
            error = (await outcome(ticket)).error
            assert error is not None and error.code == "internal_error", broken
        engine.broken = None
        ticket = batcher.submit(key(), item())
        (await engine.next_call()).release.set()
        assert (await outcome(ticket)).images
        assert batcher.calls == 3 and batcher.last_error is None
