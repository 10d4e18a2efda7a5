"""Running one engine call on ComfyUI: one prompt per image, all queued at once.

Each image is its own prompt with seed `seed + i`, so an image is reproducible whether it
was asked for alone or among others (a `batch_size` inside one prompt would share one
seed). The call's prompts are queued together, so ComfyUI's queue never idles between
them, and they are followed to the end through three sources, any one of which suffices:

- websocket events (`progress` -> Progress; `execution_error` fails the call at once;
  `execution_success` on the socket that also saw the prompt's `execution_start` -> its
  outputs are those of the `executed` events between, which equal the history entry's,
  so no `/history` read; otherwise `executing` with node null, sent once the history
  entry is written, or a moment after the end event -> look at the history entry);
- `/history/{id}` every `poll_interval`, and at once after the socket reconnected (an
  entry appears only once a run has ended), so a dead socket never hangs a call;
- `/queue`, when the socket reconnected: a prompt neither queued nor in history was lost
  (ComfyUI restarted) and the call fails with 503, which the job manager retries.

Cancel is per prompt and targeted: a running prompt gets `POST /interrupt {prompt_id}`,
a pending one `POST /queue {delete: [id]}` (then the targeted interrupt too if `/queue`
shows it started meanwhile); neither touches another call's or another client's prompt,
so several calls can be in ComfyUI at once (the engine's `COMFYUI_MAX_QUEUED`).

Timeouts are per prompt: `prompt_timeout` from when ComfyUI starts running it (its first
event: `execution_start`, or `executing` where that was missed), `queue_timeout` from its
post until then, so a prompt that waited behind others still gets its whole run time.

Outputs: a PNG (SaveImage's) is passed on as ComfyUI wrote it, less its metadata chunks
(pngs.py), and decoded only if the request asks for another format.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from easel.core.errors import EaselError, GatewayTimeout, ServiceUnavailable
from easel.generation.engines.base import (
    CancelledFn,
    EngineCall,
    EngineOutput,
    ItemProgress,
    ProgressFn,
)
from easel.generation.engines.comfyui.client import ComfyUIClient, Message
from easel.generation.engines.comfyui.errors import execution_failure, rejection
from easel.generation.engines.comfyui.pngs import passed_png
from easel.generation.engines.comfyui.workflows import FieldOf, Workflow
from easel.generation.engines.encoded import OutputImage

log = logging.getLogger("easel.generation.comfyui")

TICK = 0.05  # seconds between checks of cancel flags while waiting for events
HISTORY_GRACE = 2 * TICK  # after an end event, how long to wait for `executing` null
UPLOAD_FOLDER = "easel"  # subfolder of ComfyUI's input folder for uploaded images
_ENDED = ("execution_success", "execution_error", "execution_interrupted")


@dataclass
class PromptRun:
    id: str
    item: int
    graph: dict[str, Any]
    posted_epoch: int = 0
    posted_at: float = 0.0  # loop time
    running: bool = False
    started_at: float | None = None  # loop time ComfyUI was first seen running it
    ended_at: float | None = None  # when an end event came; the history entry may lag
    written: bool = False  # `executing` null came: ComfyUI has written the history entry
    watched_on: int | None = None  # the socket connection that saw its `execution_start`
    outputs: dict[str, Any] = field(default_factory=dict)  # node -> `executed` output
    succeeded: bool = False  # `execution_success` on that same connection: outputs complete
    stopped: bool = False  # we interrupted or deleted it
    done: bool = False
    value: int = 0
    maximum: int = 0
    images: list[OutputImage] = field(default_factory=list)


@dataclass(frozen=True)
class RunOptions:
    poll_interval: float
    prompt_timeout: float  # per prompt, from when ComfyUI starts running it
    stop_timeout: float
    queue_timeout: float = 600.0  # per prompt, from its post until ComfyUI starts it


class CallRun:
    def __init__(
        self,
        *,
        client: ComfyUIClient,
        workflow: Workflow,
        call: EngineCall,
        values: list[dict[str, Any]],
        field_of: FieldOf,
        options: RunOptions,
    ) -> None:
        self.client = client
        self.workflow = workflow
        self.call = call
        self.values = values  # per item: parameter values shared by its images
        self.field_of = field_of
        self.options = options
        self.prompts: list[PromptRun] = []
        self.events: asyncio.Queue[Message] = asyncio.Queue()
        self.interrupted = False
        self.steps_reported = 0
        self.reported: dict[int, ItemProgress] = {}  # per item, the last progress sent

    async def run(self, progress: ProgressFn, cancelled: CancelledFn) -> EngineOutput:
        try:
            await self._post_all(cancelled)
            await self._follow(progress, cancelled)
        except BaseException:
            await self._stop_quietly([p for p in self.prompts if not p.done])
            raise
        finally:
            for prompt in self.prompts:
                self.client.unsubscribe(prompt.id)
        images: list[list[OutputImage]] = [[] for _ in self.call.items]
        for prompt in self.prompts:
            images[prompt.item].extend(prompt.images)
        return EngineOutput(
            images=images, steps_run=self.steps_reported, interrupted=self.interrupted
        )

    # ---- queueing ------------------------------------------------------------------------
    async def _post_all(self, cancelled: CancelledFn) -> None:
        for index, item in enumerate(self.call.items):
            values = dict(self.values[index])
            for name, image in (("input_image", item.input_image), ("mask_image", item.mask_image)):
                if image is not None and name in self.workflow.parameters:
                    values[name] = await self._upload(image, name)
            for offset in range(item.num_images):
                if cancelled() or self.call.item_cancelled(index):
                    break
                if "seed" in self.workflow.parameters:
                    values["seed"] = self.workflow.seeds().nth(item.seed, offset)
                await self._post(PromptRun(str(uuid.uuid4()), index, self.workflow.inject(values)))

    async def _upload(self, image: Image.Image, name: str) -> str:
        data = await asyncio.to_thread(_png, image)
        # Unique per request: two requests never read each other's image.
        filename = f"{uuid.uuid4().hex}-{name}.png"
        return await self.client.upload_image(data, filename, UPLOAD_FOLDER)

    async def _post(self, prompt: PromptRun) -> None:
        # Subscribed (and the id chosen) before posting: events can precede the answer.
        self.client.subscribe(prompt.id, self.events)
        prompt.posted_epoch = self.client.epoch
        prompt.posted_at = asyncio.get_running_loop().time()
        self.prompts.append(prompt)
        extra = {"easel": {"workflow": self.workflow.name, "item": prompt.item}}
        rejected = await self.client.queue_prompt(prompt.graph, prompt.id, extra)
        if rejected is not None:
            prompt.done = True  # never queued: nothing to stop
            raise rejection(rejected, self.workflow, self.field_of)

    # ---- following -----------------------------------------------------------------------
    def _unfinished(self) -> list[PromptRun]:
        return [p for p in self.prompts if not p.done]

    async def _follow(self, progress: ProgressFn, cancelled: CancelledFn) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.options.poll_interval
        next_check = loop.time()  # of the deadlines: every TICK, not on every event
        seen_epoch = self.client.epoch
        while unfinished := self._unfinished():
            if cancelled():
                self.interrupted = True
                await self._stop(unfinished)
                return
            if dropped := [p for p in unfinished if self.call.item_cancelled(p.item)]:
                await self._stop(dropped)
            if loop.time() >= next_check:
                await self._check_deadlines(loop.time())
                next_check = loop.time() + TICK
            await self._next_events(progress)
            for prompt in self._unfinished():
                if prompt.succeeded:  # the socket saw it all: its outputs are known
                    prompt.images = await self._fetch_outputs(prompt.outputs)
                    prompt.done = True
                elif self._history_due(prompt, loop.time()):
                    await self._check_history(prompt, lost_if_absent=False)
            reconnected = self.client.epoch != seen_epoch
            if reconnected or loop.time() >= next_poll:
                seen_epoch = self.client.epoch
                next_poll = loop.time() + self.options.poll_interval
                for prompt in self._unfinished():
                    suspect = prompt.posted_epoch != self.client.epoch or not self.client.connected
                    await self._check_history(prompt, lost_if_absent=suspect)

    async def _next_events(self, progress: ProgressFn) -> None:
        """Wait up to TICK for an event, then take every one already queued with it."""
        if self.events.empty():
            try:
                async with asyncio.timeout(TICK):  # no task per wait, as wait_for makes
                    message = await self.events.get()
            except TimeoutError:
                return
            await self._on_event(message, progress)
        while not self.events.empty():
            await self._on_event(self.events.get_nowait(), progress)

    async def _on_event(self, message: Message, progress: ProgressFn) -> None:
        kind, data, epoch = message
        prompt = next((p for p in self.prompts if p.id == data.get("prompt_id")), None)
        if prompt is None or prompt.done:
            return
        if kind == "execution_start":
            self._started(prompt)
            prompt.watched_on = epoch
        elif kind in ("progress_state", "execution_cached"):
            self._started(prompt)
        elif kind == "executed":
            self._started(prompt)
            output = data.get("output")
            if isinstance(output, dict):
                prompt.outputs[str(data.get("node"))] = output
        elif kind == "executing":
            self._started(prompt)
            if data.get("node") is None:  # the legacy "done" marker: history is written
                prompt.written = True
        elif kind == "progress":
            self._started(prompt)
            prompt.value, prompt.maximum = int(data.get("value", 0)), int(data.get("max", 0))
            self._report(progress)
        elif kind in _ENDED:
            prompt.ended_at = asyncio.get_running_loop().time()
            if kind == "execution_success" and prompt.watched_on == epoch:
                prompt.succeeded = not prompt.stopped
            if kind == "execution_error" and not prompt.stopped:
                raise execution_failure(data, prompt.id)

    @staticmethod
    def _started(prompt: PromptRun) -> None:
        prompt.running = True
        if prompt.started_at is None:
            prompt.started_at = asyncio.get_running_loop().time()

    async def _check_deadlines(self, now: float) -> None:
        """A prompt may run `prompt_timeout` from when ComfyUI starts it (time queued
        behind other prompts, easel's or other clients', does not count) and wait
        `queue_timeout` from its post for that start. Past either, the call fails with 504
        and its prompts are stopped (interrupted, or deleted from the queue)."""
        options = self.options
        for prompt in self._unfinished():
            if prompt.ended_at is not None:
                continue  # ended: only its history entry is awaited
            if prompt.started_at is not None:
                if now - prompt.started_at > options.prompt_timeout:
                    raise GatewayTimeout(
                        f"ComfyUI ran a prompt of workflow {self.workflow.name!r} for more "
                        f"than {options.prompt_timeout:g}s (EASEL_COMFYUI_PROMPT_TIMEOUT)"
                    )
            elif now - prompt.posted_at > options.queue_timeout:
                # Its start may have gone unseen (a socket that dropped): ask ComfyUI.
                if await self.client.is_running(prompt.id):
                    self._started(prompt)
                    continue
                await self._check_history(prompt, lost_if_absent=False)
                if not prompt.done:
                    raise GatewayTimeout(
                        f"ComfyUI did not start a prompt of workflow {self.workflow.name!r} "
                        f"within {options.queue_timeout:g}s of queueing it "
                        "(EASEL_COMFYUI_QUEUE_TIMEOUT)"
                    )

    def _report(self, progress: ProgressFn) -> None:
        live = [p for p in self.prompts if not p.stopped]
        unit = max((p.maximum for p in live), default=0)
        if unit <= 0:
            return
        self.steps_reported = sum(unit if p.done else min(p.value, unit) for p in live)
        # Each request counts only its own prompts: two of 24 steps sharing a call each
        # see 1/24 .. 24/24, not 1/48 .. 48/48.
        items: list[ItemProgress | None] = []
        for index in range(len(self.call.items)):
            own = [p for p in live if p.item == index]
            step = sum(unit if p.done else min(p.value, unit) for p in own)
            mine = ItemProgress(step, unit * max(1, len(own)))
            # Only news: not a request still waiting for its first step, nor one whose
            # prompts ended while another request's prompts run.
            news = step > 0 and mine != self.reported.get(index)
            self.reported[index] = mine
            items.append(mine if news else None)
        if any(items):
            progress(items)

    @staticmethod
    def _history_due(prompt: PromptRun, now: float) -> bool:
        """Whether to read the ended prompt's history now. ComfyUI sends the end event,
        writes the entry, then `executing` null: reading at the end event would mostly
        find nothing yet and cost a round trip per prompt, so wait for the marker, or a
        moment after the end event should it never come."""
        if prompt.written:
            return True
        return prompt.ended_at is not None and now - prompt.ended_at >= HISTORY_GRACE

    async def _check_history(self, prompt: PromptRun, *, lost_if_absent: bool) -> None:
        entry = await self.client.history(prompt.id)
        if entry is None and lost_if_absent and not await self.client.in_queue(prompt.id):
            # Not queued: it ended between the two looks, or ComfyUI forgot it.
            entry = await self.client.history(prompt.id)
            if entry is None:
                raise ServiceUnavailable(
                    f"ComfyUI lost prompt {prompt.id} of workflow {self.workflow.name!r}: it "
                    "is neither queued nor finished (ComfyUI restarted?); retry",
                    headers={"Retry-After": "5"},
                )
        if entry is not None:
            await self._finish(prompt, entry)

    async def _finish(self, prompt: PromptRun, entry: dict[str, Any]) -> None:
        status = entry.get("status") or {}
        messages = status.get("messages") or []
        last_kind, last_data = (messages[-1][0], messages[-1][1]) if messages else ("", {})
        if status.get("status_str") == "success" or status.get("completed") is True:
            prompt.images = await self._fetch_outputs(entry.get("outputs") or {})
        elif last_kind == "execution_interrupted" and not prompt.stopped:
            raise execution_failure(
                {**last_data, "exception_message": "interrupted in ComfyUI (not by easel)"},
                prompt.id,
            )
        elif not prompt.stopped:
            errors = [data for kind, data in messages if kind == "execution_error"]
            raise execution_failure(errors[-1] if errors else {}, prompt.id)
        prompt.done = True

    async def _fetch_outputs(self, outputs: dict[str, Any]) -> list[OutputImage]:
        wanted = self.workflow.output_nodes()
        files = [
            image
            for node, output in outputs.items()
            if wanted is None or node in wanted
            for image in (output.get("images") or [])
        ]
        if wanted is None and any(f.get("type") == "output" for f in files):
            files = [f for f in files if f.get("type") == "output"]  # not the previews
        images: list[OutputImage] = []
        for file in files:
            name, folder = str(file["filename"]), str(file.get("subfolder", ""))
            data = await self.client.view(name, folder, str(file.get("type")))
            # A PNG (SaveImage's) goes on as it came, its header read, never its pixels;
            # anything else is decoded, off the event loop.
            passed = passed_png(data, name)
            images.append(passed if passed is not None else await asyncio.to_thread(_decode, data))
        return images

    # ---- stopping ------------------------------------------------------------------------
    async def _stop(self, prompts: list[PromptRun]) -> None:
        for prompt in prompts:
            if prompt.stopped or prompt.done:
                continue
            prompt.stopped = True
            if not prompt.running:
                await self.client.delete_pending([prompt.id])
            # `/interrupt` only for a prompt that runs (its events said so, or the queue
            # says it just started): it is targeted on ComfyUI 0.33, but an older one
            # ignores the id and stops whatever runs, which may be another call's prompt.
            ended = prompt.ended_at is not None or prompt.written
            if not ended and (prompt.running or await self.client.is_running(prompt.id)):
                await self.client.interrupt(prompt.id)
            log.info("stopped ComfyUI prompt %s (%s)", prompt.id, self.workflow.name)
            prompt.done = True  # its outcome no longer matters to anyone

    async def _stop_quietly(self, prompts: list[PromptRun]) -> None:
        started = time.monotonic()
        with contextlib.suppress(EaselError, TimeoutError):
            await asyncio.wait_for(self._stop(prompts), self.options.stop_timeout)
        if prompts:
            log.info("stopped %d prompt(s) in %.2fs", len(prompts), time.monotonic() - started)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
