"""GenerationService: validate a request, queue it in the batcher, encode its images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PIL import Image
from starlette.concurrency import run_in_threadpool

from easel.core.errors import EaselError, InvalidInput
from easel.core.generation_api import (
    GenerationRequest,
    GenerationResult,
    LoraChoice,
    Mode,
    OutputKind,
    Timings,
)
from easel.core.images import ImageCodec
from easel.generation.batching import Batcher, Outcome, Ticket
from easel.generation.control_images import decode_controls
from easel.generation.engines.base import Engine, EngineItem, Prepared
from easel.generation.outputs import ImageOutputs, passes
from easel.generation.styles import Styles


@dataclass(frozen=True)
class Limits:
    max_num_images: int
    max_steps: int
    max_side: int
    max_input_images: int = 4
    max_controls: int = 3


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
    images: list[Image.Image]  # the input image first, then any further ones (Edit-Plus)
    mask: Image.Image | None
    controls: list[Image.Image] = field(default_factory=list)  # one per request.control

    @property
    def image(self) -> Image.Image | None:
        return self.images[0] if self.images else None


class GenerationService:
    def __init__(
        self,
        *,
        engine: Engine,
        batcher: Batcher,
        codec: ImageCodec,
        styles: Styles,
        limits: Limits,
        outputs: ImageOutputs,
    ) -> None:
        self.engine = engine
        self.batcher = batcher
        self.codec = codec
        self.styles = styles
        self.limits = limits
        self.outputs = outputs

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
        if len(request.input_images) > limits.max_input_images:
            raise InvalidInput.field("input_images", f"at most {limits.max_input_images}")
        if len(request.control) > limits.max_controls:
            # Before any image is decoded: each costs a decode (and maybe an edge map).
            raise InvalidInput.field(
                "control", f"at most {limits.max_controls} (EASEL_GENERATION_MAX_CONTROLS)"
            )

    def _check_inputs(self, request: GenerationRequest) -> None:
        if self.engine.capabilities.validates_inputs:
            return  # e.g. ComfyUI: its workflows declare which prompt and images they need
        mode = request.resolved_mode
        if mode is not Mode.EDIT and not (request.prompt or "").strip():
            raise InvalidInput.field("prompt", f"required for {mode}")
        if mode in (Mode.EDIT, Mode.INPAINT) and request.input_image is None:
            if not request.input_images:
                raise InvalidInput.field("input_image", f"required for {mode}")
        if mode is Mode.INPAINT and request.mask_image is None:
            raise InvalidInput.field("mask_image", "required for inpaint")
        if mode is Mode.TEXT_TO_IMAGE and request.input_image is not None:
            raise InvalidInput.field("input_image", "not used by text-to-image; use edit")
        if mode is not Mode.EDIT and request.input_images:
            raise InvalidInput.field("input_images", f"not used by {mode}; use edit")
        if mode is not Mode.INPAINT and request.mask_image is not None:
            raise InvalidInput.field("mask_image", f"not used by {mode}; use inpaint")

    def _decode_images(
        self, request: GenerationRequest
    ) -> tuple[list[Image.Image], Image.Image | None]:
        """The input images (one, or Edit-Plus' several) and the mask."""
        images, mask = [], None
        if request.input_image is not None:
            images = [self.codec.decode(request.input_image, "input_image").convert("RGB")]
        for index, data in enumerate(request.input_images):
            images.append(self.codec.decode(data, f"input_images[{index}]").convert("RGB"))
        image = images[0] if images else None
        if request.mask_image is not None:
            mask = self.codec.decode_mask(request.mask_image, "mask_image")
            assert image is not None
            if mask.size != image.size:
                raise InvalidInput.field(
                    "mask_image",
                    f"size {mask.width}x{mask.height} does not match input_image size "
                    f"{image.width}x{image.height}",
                )
        return images, mask

    async def _admit(self, request: GenerationRequest) -> _Admitted:
        """Every check a request passes before it may be queued; raises InvalidInput."""
        self._check_limits(request)
        self._check_inputs(request)
        prompt, negative = self.styles.apply(
            request.style, request.prompt or "", request.negative_prompt
        )
        # Decoding runs in a thread; a request without images skips the hops (each a
        # thread wake-up, measurable on a fast ComfyUI workflow: benchmarks/README.md).
        images: list[Image.Image] = []
        mask = None
        if (
            request.input_image is not None
            or request.input_images
            or request.mask_image is not None
        ):
            images, mask = await run_in_threadpool(self._decode_images, request)
        input_size = images[0].size if images else None
        controls: list[Image.Image] = []
        if request.control:
            controls = await run_in_threadpool(decode_controls, request, self.codec, input_size)
        # Without a size or an input image, the control images give the output's size.
        prepared = self.engine.prepare(
            request, input_size or (controls[0].size if controls else None)
        )
        prepared.seeds.check(request.seed, prepared.seeds_of)
        return _Admitted(prepared, prompt, negative, images, mask, controls)

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
            input_images=admitted.images,
            control_images=admitted.controls,
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
        request = submission.request
        passed = request.output is OutputKind.BASE64 and all(
            passes(image, request.output_format) for image in outcome.images or []
        )
        if passed:  # base64 of the engine's own bytes: no pixel work, nothing to offload
            return self._encode(submission, outcome)
        return await run_in_threadpool(self._encode, submission, outcome)

    def _encode(self, submission: Submission, outcome: Outcome) -> GenerationResult:
        request, key = submission.request, submission.prepared.key
        started = time.perf_counter()
        assert outcome.images is not None
        seed = submission.ticket.item.seed
        images = [
            self.outputs.generated(
                image,
                output=request.output,
                fmt=request.output_format,
                quality=request.quality,
                seed=submission.prepared.seeds.nth(seed, index),
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
            scheduler=outcome.scheduler or key.scheduler,
            loras=[LoraChoice(name=name, weight=weight) for name, weight in key.loras],
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
