"""GenerationService: validate a request, queue it in the batcher, encode its images."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image
from starlette.concurrency import run_in_threadpool

from easel.core.errors import EaselError, InvalidInput
from easel.core.generation_api import (
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    Mode,
    Timings,
)
from easel.core.images import ImageCodec
from easel.generation.batching import Batcher, Outcome, Ticket
from easel.generation.engines.base import Engine, EngineItem, Prepared
from easel.generation.styles import Styles


@dataclass(frozen=True)
class Limits:
    max_num_images: int
    max_steps: int
    max_side: int


class Cancelled(EaselError):
    """A request ended by cancel; only reported to a client still listening."""

    status, code = 409, "cancelled"


@dataclass
class Submission:
    ticket: Ticket
    request: GenerationRequest
    prepared: Prepared
    submitted_at: float


@dataclass
class _Admitted:
    """A request that passed every check: its model resolved, style applied, images read."""

    prepared: Prepared
    prompt: str
    negative: str | None
    image: Image.Image | None
    mask: Image.Image | None


class GenerationService:
    def __init__(
        self,
        *,
        engine: Engine,
        batcher: Batcher,
        codec: ImageCodec,
        styles: Styles,
        limits: Limits,
    ) -> None:
        self.engine = engine
        self.batcher = batcher
        self.codec = codec
        self.styles = styles
        self.limits = limits

    # ---- intake ------------------------------------------------------------------------
    def _check_limits(self, request: GenerationRequest) -> None:
        limits = self.limits
        if request.num_images > limits.max_num_images:
            raise InvalidInput.field("num_images", f"at most {limits.max_num_images}")
        if request.steps is not None and request.steps > limits.max_steps:
            raise InvalidInput.field("steps", f"at most {limits.max_steps}")
        for name in ("width", "height"):
            value = getattr(request, name)
            if value is not None and value > limits.max_side:
                raise InvalidInput.field(name, f"at most {limits.max_side}")

    def _check_inputs(self, request: GenerationRequest) -> None:
        if self.engine.capabilities.validates_inputs:
            return  # e.g. ComfyUI: its workflows declare which prompt and images they need
        mode = request.resolved_mode
        if mode is not Mode.EDIT and not (request.prompt or "").strip():
            raise InvalidInput.field("prompt", f"required for {mode}")
        if mode in (Mode.EDIT, Mode.INPAINT) and request.input_image is None:
            raise InvalidInput.field("input_image", f"required for {mode}")
        if mode is Mode.INPAINT and request.mask_image is None:
            raise InvalidInput.field("mask_image", "required for inpaint")
        if mode is Mode.TEXT_TO_IMAGE and request.input_image is not None:
            raise InvalidInput.field("input_image", "not used by text-to-image; use edit")
        if mode is not Mode.INPAINT and request.mask_image is not None:
            raise InvalidInput.field("mask_image", f"not used by {mode}; use inpaint")

    def _decode_images(
        self, request: GenerationRequest
    ) -> tuple[Image.Image | None, Image.Image | None]:
        image = mask = None
        if request.input_image is not None:
            image = self.codec.decode(request.input_image, "input_image").convert("RGB")
        if request.mask_image is not None:
            mask = self.codec.decode_mask(request.mask_image, "mask_image")
            assert image is not None
            if mask.size != image.size:
                raise InvalidInput.field(
                    "mask_image",
                    f"size {mask.width}x{mask.height} does not match input_image size "
                    f"{image.width}x{image.height}",
                )
        return image, mask

    async def _admit(self, request: GenerationRequest) -> _Admitted:
        """Every check a request passes before it may be queued; raises InvalidInput."""
        self._check_limits(request)
        self._check_inputs(request)
        prompt, negative = self.styles.apply(
            request.style, request.prompt or "", request.negative_prompt
        )
        image, mask = await run_in_threadpool(self._decode_images, request)
        prepared = self.engine.prepare(request, image.size if image else None)
        prepared.seeds.check(request.seed, prepared.seeds_of)
        return _Admitted(prepared, prompt, negative, image, mask)

    async def validate(self, request: GenerationRequest) -> Prepared:
        """What `submit` checks, without queueing: for the job manager at submit time."""
        return (await self._admit(request)).prepared

    async def submit(
        self, request: GenerationRequest, *, request_id: str | None, listening: bool
    ) -> Submission:
        """Validate and queue; raises InvalidInput (422) or TooManyRequests (429)."""
        admitted = await self._admit(request)
        prepared = admitted.prepared
        seed = request.seed if request.seed is not None else prepared.seeds.draw()
        item = EngineItem(
            prompt=admitted.prompt,
            negative_prompt=admitted.negative,
            seed=seed,
            num_images=request.num_images,
            input_image=admitted.image,
            mask_image=admitted.mask,
            # An engine without previews is not asked for them.
            wants_preview_every=(
                request.preview_every if self.engine.capabilities.previews else None
            ),
        )
        ticket = self.batcher.submit(prepared.key, item, ticket_id=request_id, listening=listening)
        return Submission(ticket, request, prepared, submitted_at=time.perf_counter())

    def cancel(self, request_id: str) -> bool:
        ticket = self.batcher.find(request_id)
        return ticket is not None and self.batcher.cancel(ticket)

    # ---- outcome -----------------------------------------------------------------------
    async def result(self, submission: Submission) -> GenerationResult:
        """Wait for the outcome; images encoded, or the error raised."""
        outcome = await submission.ticket.outcome
        if outcome.cancelled:
            raise Cancelled("the request was cancelled")
        if outcome.error is not None:
            raise outcome.error
        return await run_in_threadpool(self._encode, submission, outcome)

    def _encode(self, submission: Submission, outcome: Outcome) -> GenerationResult:
        request, key = submission.request, submission.prepared.key
        started = time.perf_counter()
        assert outcome.images is not None
        seed = submission.ticket.item.seed
        images = [
            GeneratedImage(
                image=self.codec.encode_base64(image, request.output_format, request.quality),
                seed=submission.prepared.seeds.nth(seed, index),
                format=request.output_format,
                media_type=request.output_format.media_type,
                width=image.width,
                height=image.height,
            )
            for index, image in enumerate(outcome.images)
        ]
        encode_s = time.perf_counter() - started
        total_s = time.perf_counter() - submission.submitted_at
        return GenerationResult(
            images=images,
            seed=seed,
            model=key.model,
            mode=key.mode,
            width=key.width,
            height=key.height,
            steps=key.steps,
            guidance_scale=key.guidance_scale,
            batch_size=outcome.batch_size,
            batch_requests=outcome.batch_requests,
            timings=Timings(
                queue_wait_ms=round(outcome.queue_wait_s * 1000, 2),
                inference_ms=round(outcome.inference_s * 1000, 2),
                encode_ms=round(encode_s * 1000, 2),
                total_ms=round(total_s * 1000, 2),
            ),
            warnings=list(submission.prepared.warnings),
        )
