"""Gather concurrent compatible requests into pipeline calls; bound the queue.

Continuous batching, as LLM servers do: one dispatcher task starts a call whenever the
engine has a free call slot (`EngineCapabilities.concurrent_calls`, each call its own task)
and a request waits. The call takes the oldest waiting request's `CallKey` (arrival order)
and every compatible request waiting, up to `max_batch_images` images; requests arriving
while every slot is busy gather in the queue for the next call. So a request that finds a
free slot and nothing compatible waiting starts at once, never paying the window.

The batch window is only an upper bound on the one wait that can pay (companions.py):
right after a call of the same key ended, while the requests it answered may come back,
the next batch of that key waits for them until it holds as many images as that call had
in circulation, or is full, or a window has passed since its oldest request could start (it
arrived, or that call ended). While that oldest batch waits, younger ones wait behind it
(arrival order); `window_s = 0` never waits.

Beyond `max_pending` (waiting + running) requests are refused with 429 and a Retry-After
estimated from recent call durations.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from PIL import Image

from easel.core.errors import EaselError, ServiceUnavailable, TooManyRequests
from easel.core.events import GenerationEvent, Loading, Progress, Queued, Started
from easel.generation.companions import Companions
from easel.generation.engines.base import (
    CallKey,
    Engine,
    EngineCall,
    EngineItem,
    EngineOutput,
    ItemProgress,
)
from easel.generation.engines.encoded import OutputImage
from easel.generation.metrics import GenerationMetrics

log = logging.getLogger("easel.generation.batching")


class TicketState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"


@dataclass
class Outcome:
    """How a ticket ended: images, an error, or cancelled (a value, not an exception)."""

    images: list[OutputImage] | None = None
    error: EaselError | None = None
    cancelled: bool = False
    batch_size: int = 1  # images the pipeline call generated (its batch dimension)
    batch_requests: int = 1  # requests that shared it
    queue_wait_s: float = 0.0
    inference_s: float = 0.0
    scheduler: str | None = None  # the engine's name of the scheduler that ran


@dataclass(eq=False)
class Ticket:
    """One request in the batcher. `events` ends with None once `outcome` is set."""

    key: CallKey
    item: EngineItem
    enqueued_at: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    listening: bool = False
    state: TicketState = TicketState.WAITING
    cancelled: bool = False
    started_at: float | None = None
    events: asyncio.Queue[GenerationEvent | None] = field(default_factory=asyncio.Queue)
    outcome: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def emit(self, event: GenerationEvent) -> None:
        if self.listening and self.state is not TicketState.DONE:
            self.events.put_nowait(event)


def _preview_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Batcher:
    def __init__(
        self,
        *,
        engine: Engine,
        window_s: float,
        max_batch_images: int,
        max_pending: int,
        metrics: GenerationMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.window_s = window_s
        self.max_batch_images = max_batch_images
        self.max_pending = max_pending
        self.clock = clock
        self.slots = max(1, engine.capabilities.concurrent_calls)  # calls run at once
        self.calls = 0  # pipeline calls made: batching shows as calls < requests
        self.steps_run = 0  # denoising steps run, all calls
        self.last_call: dict[str, object] | None = None  # the last call that ended
        self.last_error: str | None = None
        self._waiting: deque[Ticket] = deque()
        self._running: dict[asyncio.Task[None], list[Ticket]] = {}  # per call, its tickets
        self._wake = asyncio.Event()  # an arrival, a cancel or a call's end
        self._companions = Companions(window_s=window_s, max_images=max_batch_images)
        self._durations: deque[float] = deque(maxlen=20)
        self._by_id: dict[str, Ticket] = {}

    # ---- intake ------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._waiting) + sum(len(batch) for batch in self._running.values())

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running_calls(self) -> int:
        return len(self._running)

    def retry_after(self) -> int:
        per_call = sum(self._durations) / len(self._durations) if self._durations else 1.0
        calls_ahead = self.pending / max(1, self.max_batch_images) / self.slots
        return max(1, math.ceil(per_call * max(1, math.ceil(calls_ahead))))

    def submit(
        self,
        key: CallKey,
        item: EngineItem,
        *,
        ticket_id: str | None = None,
        listening: bool = False,
    ) -> Ticket:
        if self.pending >= self.max_pending:
            raise TooManyRequests(
                f"the generation queue is full ({self.pending} requests); retry later",
                details={"pending": self.pending, "max_pending": self.max_pending},
                headers={"Retry-After": str(self.retry_after())},
            )
        ticket = Ticket(key=key, item=item, enqueued_at=self.clock(), listening=listening)
        if ticket_id and ticket_id not in self._by_id:
            ticket.id = ticket_id
        self._by_id[ticket.id] = ticket
        self._waiting.append(ticket)
        ticket.emit(Queued(position=len(self._waiting) - 1, request_id=ticket.id))
        self._wake.set()
        return ticket

    def find(self, ticket_id: str) -> Ticket | None:
        return self._by_id.get(ticket_id)

    def cancel(self, ticket: Ticket) -> bool:
        """Cancel a waiting or running request; False if it already ended.

        A waiting one never starts. A running one is answered at once; its pipeline call
        stops at the next step when every request sharing it is cancelled."""
        if ticket.state is TicketState.DONE:
            return False
        ticket.cancelled = True
        if ticket.state is TicketState.WAITING:
            self._waiting.remove(ticket)
            self._announce_positions()
            self._wake.set()  # the oldest may have been waiting for companions
        self._finish(ticket, Outcome(cancelled=True))
        return True

    # ---- dispatch ----------------------------------------------------------------------
    async def run(self) -> None:
        """The dispatcher loop; runs until cancelled (the app's lifespan owns it), then
        stops the running calls and answers every request with ServiceUnavailable."""
        try:
            while True:
                self._wake.clear()
                await self._sleep(self._dispatch())
        finally:
            await self._shut_down()

    def _dispatch(self) -> float | None:
        """Start every call that may start now. The seconds the oldest waiting batch may
        still wait for companions; None when nothing waits on a deadline."""
        while self._waiting and len(self._running) < self.slots:
            oldest = self._waiting[0]
            key, images = oldest.key, self._compatible_images(oldest.key)
            wait_s = self._companions.wait_s(key, images, oldest.enqueued_at, self.clock())
            if wait_s > 0:
                return wait_s
            self._start(self._take_batch())
        return None

    async def _sleep(self, seconds: float | None) -> None:
        if seconds is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _shut_down(self) -> None:
        tickets = [*self._waiting, *(t for batch in self._running.values() for t in batch)]
        calls = list(self._running)
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        self._waiting.clear()
        self._running.clear()
        for ticket in tickets:
            self._finish(ticket, Outcome(error=ServiceUnavailable("service shutting down")))

    def _compatible_images(self, key: CallKey) -> int:
        return sum(t.item.num_images for t in self._waiting if t.key == key)

    def _take_batch(self) -> list[Ticket]:
        first = self._waiting[0]
        batch, images = [first], first.item.num_images
        for ticket in list(self._waiting)[1:] if first.key.shares else ():
            if ticket.key == first.key and images + ticket.item.num_images <= (
                self.max_batch_images
            ):
                batch.append(ticket)
                images += ticket.item.num_images
        for ticket in batch:
            self._waiting.remove(ticket)
        return batch

    def _announce_positions(self) -> None:
        for position, ticket in enumerate(self._waiting):
            ticket.emit(Queued(position=position, request_id=ticket.id))

    def _start(self, batch: list[Ticket]) -> None:
        started = self.clock()
        size, requests = _images(batch), len(batch)
        model = batch[0].key.model
        # The engine loads it in this call: say so first, as a load can take minutes.
        loading = None if self.engine.is_loaded(model) else Loading(model=model)
        for ticket in batch:
            ticket.state, ticket.started_at = TicketState.RUNNING, started
            if loading is not None:
                ticket.emit(loading)
            ticket.emit(Started(batch_size=size, batch_requests=requests))
        self._running[asyncio.create_task(self._run_call(batch, started))] = batch
        self._announce_positions()

    async def _run_call(self, batch: list[Ticket], started: float) -> None:
        loop = asyncio.get_running_loop()

        def emit_progress(items: list[ItemProgress | None]) -> None:
            for ticket, mine in zip(batch, items, strict=False):
                if mine is None:
                    continue  # nothing new for this request
                every = ticket.item.wants_preview_every
                wanted = every is not None and mine.step % every == 0
                encoded = None
                if wanted and mine.preview is not None:
                    encoded = _preview_b64(mine.preview)
                ticket.emit(Progress(step=mine.step, total=mine.total, preview=encoded))

        def progress(items: list[ItemProgress | None]) -> None:
            # Called on the engine's thread: count here (a step has run), emit on the loop.
            self.steps_run += 1
            if self.metrics is not None:
                self.metrics.steps.inc()
            loop.call_soon_threadsafe(emit_progress, items)

        call = EngineCall(
            key=batch[0].key,
            items=[t.item for t in batch],
            item_cancelled=lambda index: batch[index].cancelled,
        )
        outcome = "error"
        try:
            output = await self.engine.generate(
                call, progress, lambda: all(t.cancelled for t in batch)
            )
            self._answer(batch, call, output, started)  # an output that does not fit fails
            outcome = "interrupted" if output.interrupted else "ok"
        except EaselError as exc:
            self._fail(batch, exc, started)
        except Exception as exc:
            log.exception("generation failed")
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._fail(batch, EaselError(f"generation failed: {self.last_error}"), started)
        finally:
            self._call_ended(batch, started)
            self._observe(outcome, batch, started)

    def _answer(
        self, batch: list[Ticket], call: EngineCall, output: EngineOutput, started: float
    ) -> None:
        size, requests = _images(batch), len(batch)
        elapsed = self.clock() - started
        answers = list(zip(batch, output.images, strict=True))
        self.last_error = None
        self.last_call = {
            "batch_size": size,
            "batch_requests": requests,
            "steps_run": output.steps_run,
            "steps": call.key.steps,
            "interrupted": output.interrupted,
        }
        for ticket, images in answers:
            self._finish(
                ticket,
                Outcome(
                    images=images,
                    batch_size=size,
                    batch_requests=requests,
                    queue_wait_s=started - ticket.enqueued_at,
                    inference_s=elapsed,
                    scheduler=output.scheduler,
                ),
            )

    def _call_ended(self, batch: list[Ticket], started: float) -> None:
        now = self.clock()
        self._durations.append(now - started)
        self.calls += 1
        task = asyncio.current_task()
        if task is not None:
            self._running.pop(task, None)
        key = batch[0].key
        answered = [t.item.num_images for t in batch if not t.cancelled]
        self._companions.call_ended(key, answered, self._compatible_images(key), now)
        self._wake.set()  # a slot is free

    def _observe(self, outcome: str, batch: list[Ticket], started: float) -> None:
        if self.metrics is None:
            return
        self.metrics.calls.labels(outcome).inc()
        self.metrics.batch_size.observe(len(batch))
        for ticket in batch:
            self.metrics.queue_wait.observe(started - ticket.enqueued_at)

    def _fail(self, batch: list[Ticket], error: EaselError, started: float) -> None:
        size, requests = _images(batch), len(batch)
        for ticket in batch:
            wait = started - ticket.enqueued_at
            self._finish(
                ticket,
                Outcome(error=error, batch_size=size, batch_requests=requests, queue_wait_s=wait),
            )

    def _finish(self, ticket: Ticket, outcome: Outcome) -> None:
        if ticket.state is TicketState.DONE:
            return
        if ticket.cancelled and not outcome.cancelled:
            outcome = Outcome(
                cancelled=True,
                batch_size=outcome.batch_size,
                batch_requests=outcome.batch_requests,
            )
        ticket.state = TicketState.DONE
        self._by_id.pop(ticket.id, None)
        ticket.events.put_nowait(None)
        ticket.outcome.set_result(outcome)


def _images(batch: list[Ticket]) -> int:
    """The images one pipeline call for `batch` generates: its batch dimension."""
    return sum(ticket.item.num_images for ticket in batch)
