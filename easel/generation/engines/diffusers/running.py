"""One pipeline call run to its end or to a cancel, reporting every step.

diffusers calls `callback_on_step_end` after each denoising step; it is the only hook
into the loop, so it carries progress, previews and cancel: once every request sharing
the call is cancelled it sets the pipeline's interrupt flag, and the loop stops at the
next step. Blocking: the engine runs it in a thread, and `progress` is thread-safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from easel.generation.engines.base import (
    CancelledFn,
    EngineCall,
    EngineOutput,
    ItemProgress,
    ProgressFn,
)
from easel.generation.engines.diffusers.adapters import AdapterCatalogue
from easel.generation.engines.diffusers.calls import build_call, first_images
from easel.generation.engines.diffusers.compilation import call_shape
from easel.generation.engines.diffusers.control_pipelines import control_pipeline
from easel.generation.engines.diffusers.models import condition_area
from easel.generation.engines.diffusers.outputs import per_item
from easel.generation.engines.diffusers.previews import latent_preview
from easel.generation.engines.diffusers.tuning import tuned

if TYPE_CHECKING:  # loading.py runs warm-up calls through this module
    from easel.generation.engines.diffusers.loading import LoadedModel


class StepCallback:
    """The pipeline's `callback_on_step_end` for one call."""

    def __init__(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn, family: str = "sd"
    ) -> None:
        self.steps = call.key.steps
        self.family, self.size = family, (call.key.width, call.key.height)
        self.first_images = first_images(call.items)
        self.preview_every = [item.wants_preview_every for item in call.items]
        self.progress = progress
        self.cancelled = cancelled
        self.steps_run = 0

    def __call__(self, pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> Any:
        self.steps_run = step + 1
        # The scheduler's count where it has one: image-to-image runs a share of the steps.
        total = int(getattr(pipe, "num_timesteps", 0) or self.steps)
        # One call, one schedule: every request sharing it is at the same step.
        self.progress(
            [ItemProgress(self.steps_run, total, preview) for preview in self._previews(tensors)]
        )
        if self.cancelled():
            pipe._interrupt = True
        return tensors

    def _previews(self, tensors: dict[str, Any]) -> list[Image.Image | None]:
        """Per item, a preview of its first image at the steps it asked for one."""
        due = [every is not None and self.steps_run % every == 0 for every in self.preview_every]
        if not any(due) or "latents" not in tensors:
            return [None] * len(self.preview_every)
        latents = tensors["latents"]
        return [
            latent_preview(latents[first], self.family, *self.size) if wanted else None
            for first, wanted in zip(self.first_images, due, strict=True)
        ]


def run_call(
    loaded: LoadedModel,
    call: EngineCall,
    progress: ProgressFn,
    cancelled: CancelledFn,
    *,
    warming: bool = False,
    adapters: AdapterCatalogue | None = None,
) -> EngineOutput:
    # One call at a time per model: what it sets on the pipelines it shares with the
    # model's other modes (adapters, scheduler) is its own until it has ended.
    with loaded.tuning.lock:
        return _run(loaded, call, progress, cancelled, warming=warming, adapters=adapters)


def _run(
    loaded: LoadedModel,
    call: EngineCall,
    progress: ProgressFn,
    cancelled: CancelledFn,
    *,
    warming: bool,
    adapters: AdapterCatalogue | None,
) -> EngineOutput:
    import torch

    key = call.key
    # With controls, the mode's ControlNet pipeline (built on the same loaded components).
    pipeline = control_pipeline(loaded, key) if key.control else loaded.pipeline(key.mode)
    if loaded.compiled is not None:
        shape = call_shape(
            loaded.spec.family, call.num_images, key.width, key.height, key.guidance_scale
        )
        loaded.compiled.use_for(pipeline, shape, warming=warming)
    arguments = build_call(loaded.family, pipeline, call)
    callback = StepCallback(call, progress, cancelled, loaded.spec.family)
    family = loaded.spec.family
    with (
        tuned(loaded.tuning, pipeline, family, key, adapters) as scheduler,
        torch.inference_mode(),
        condition_area(loaded.spec),
    ):
        output = pipeline(
            generator=arguments.generators, callback_on_step_end=callback, **arguments.kwargs
        )
    return EngineOutput(
        images=per_item(list(output.images), call.items),
        steps_run=callback.steps_run,
        interrupted=cancelled(),
        scheduler=scheduler,
    )
