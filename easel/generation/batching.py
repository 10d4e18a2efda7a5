"""Gather concurrent compatible requests into one pipeline call; bound the queue.

One dispatcher task owns the engine: it takes the oldest waiting request, waits a short
window for companions with the same `CallKey`, and runs them as one call. Incompatible
requests wait their turn in arrival order. Beyond `max_pending` (waiting + running)
requests are refused with 429 and a Retry-After estimated from recent call durations.
"""

from __future__ import annotations

import asyncio
import base64
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
from easel.generation.engines.base import CallKey, Engine, EngineCall, EngineItem, ItemProgress
from easel.generation.metrics import GenerationMetrics

log = logging.getLogger("easel.generation.batching")


class TicketState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"


@dataclass
class Outcome:
    """How a ticket ended: images, an error, or cancelled (a value, not an exception)."""

    images: list[Image.Image] | None = None
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
        self.calls = 0  # pipeline calls made: batching shows as calls < requests
        self.steps_run = 0  # denoising steps run, all calls
        self.last_call: dict[str, object] | None = None
        self.last_error: str | None = None
        self._waiting: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._arrival = asyncio.Event()
        self._durations: deque[float] = deque(maxlen=20)
        self._by_id: dict[str, Ticket] = {}

    # ---- intake ------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._waiting) + len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def retry_after(self) -> int:
        per_call = sum(self._durations) / len(self._durations) if self._durations else 1.0
        batches_ahead = max(1, math.ceil(self.pending / max(1, self.max_batch_images)))
        return max(1, math.ceil(per_call * batches_ahead))

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
        self._arrival.set()
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
        self._finish(ticket, Outcome(cancelled=True))
        return True

    # ---- dispatch ----------------------------------------------------------------------
    async def run(self) -> None:
        """The dispatcher loop; runs until cancelled (the app's lifespan owns it)."""
        try:
            while True:
                while not self._waiting:
                    self._arrival.clear()
                    await self._arrival.wait()
                await self._gather_window()
                if self._waiting:
                    await self._run_call(self._take_batch())
        finally:
            for ticket in [*self._waiting, *self._running]:
                self._finish(ticket, Outcome(error=ServiceUnavailable("service shutting down")))

    def _compatible_images(self, key: CallKey) -> int:
        return sum(t.item.num_images for t in self._waiting if t.key == key)

    async def _gather_window(self) -> None:
        if self.window_s <= 0 or self.max_batch_images <= 1 or not self._waiting[0].key.shares:
            return
        deadline = self.clock() + self.window_s
        while self._waiting and self._compatible_images(self._waiting[0].key) < (
            self.max_batch_images
        ):
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except TimeoutError:
                return

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

    async def _run_call(self, batch: list[Ticket]) -> None:
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
        self._running = batch
        self._announce_positions()

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
        except EaselError as exc:
            self._fail(batch, exc, started)
        except Exception as exc:
            log.exception("generation failed")
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._fail(batch, EaselError(f"generation failed: {self.last_error}"), started)
        else:
            self.last_error = None
            outcome = "interrupted" if output.interrupted else "ok"
            self.last_call = {
                "batch_size": size,
                "batch_requests": requests,
                "steps_run": output.steps_run,
                "steps": call.key.steps,
                "interrupted": output.interrupted,
            }
            elapsed = self.clock() - started
            for ticket, images in zip(batch, output.images, strict=True):
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
        finally:
            self._durations.append(self.clock() - started)
            self._running = []
            self.calls += 1
            self._observe(outcome, batch, started)

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
