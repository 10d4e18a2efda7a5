"""The diffusers engine: configured pipelines loaded once per process, run in a thread.

Per step, the pipeline's `callback_on_step_end` reports progress and, once every request
sharing the call is cancelled, sets the pipeline's interrupt flag so the loop stops at the
next step. Seeds are per image (`seed + i`) on CPU generators, so a request gives the same
images whether it runs alone or batched, on the same device.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import ValidationError

from easel.core.errors import InvalidInput, ServiceUnavailable, validation_details
from easel.core.generation_api import GenerationRequest, Mode
from easel.core.settings import ModelSpec, Settings
from easel.generation.engines.base import (
    CallKey,
    CancelledFn,
    EngineCall,
    EngineCapabilities,
    EngineHealth,
    EngineItem,
    EngineOutput,
    Prepared,
    ProgressFn,
    WorkflowListing,
)
from easel.generation.engines.compilation import (
    COMPILABLE_FAMILIES,
    CompiledDenoiser,
    call_shape,
    compile_denoiser,
)
from easel.generation.engines.families import FAMILIES, Family, call_kwargs
from easel.generation.engines.models import (
    BUILTIN_SOURCE,
    CATALOGUE,
    compile_sizes,
    condition_area,
    offline_hint,
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from easel.generation.engines.previews import latent_preview

log = logging.getLogger("easel.generation.diffusers")


@dataclass
class LoadedModel:
    name: str
    spec: ModelSpec
    family: Family
    base: Any  # the text-to-image (or only) pipeline
    device: str
    dtype: str
    load_seconds: float
    by_mode: dict[Mode, Any] = field(default_factory=dict)
    compiled: CompiledDenoiser | None = None

    def pipeline(self, mode: Mode) -> Any:
        if mode not in self.by_mode:
            import diffusers

            class_name = self.family.pipelines[mode]
            if type(self.base).__name__ == class_name:
                self.by_mode[mode] = self.base
            else:
                # from_pipe shares the loaded components: no second copy of the weights.
                self.by_mode[mode] = getattr(diffusers, class_name).from_pipe(self.base)
            self.by_mode[mode].set_progress_bar_config(disable=True)
        return self.by_mode[mode]


class DiffusersEngine:
    name = "diffusers"
    # Previews come from the latents of SD-family models (others' are None).
    capabilities = EngineCapabilities(previews=True)

    def __init__(
        self,
        *,
        models: dict[str, ModelSpec],
        default_model: str,
        models_path: Path,
        cache_dir: Path,
        device: str = "auto",
        load: str = "startup",
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        compile_batch_sizes: tuple[int, ...] = (),
    ) -> None:
        self.models = models
        self.default_model = default_model
        self.models_path = models_path
        self.cache_dir = cache_dir
        self.device_setting = device
        self.load_mode = load
        self.cpu_offload = cpu_offload
        self.vae_tiling = vae_tiling
        self.compile_batch_sizes = compile_batch_sizes  # empty: no torch.compile
        self.loaded: dict[str, LoadedModel] = {}
        self.errors: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: asyncio.Task[Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersEngine:
        return cls(
            models={**CATALOGUE, **settings.generation_models},
            default_model=settings.generation_model,
            models_path=settings.models_path,
            cache_dir=settings.data_dir / "models",
            device=settings.generation_device,
            load=settings.generation_load,
            cpu_offload=settings.generation_cpu_offload,
            vae_tiling=settings.generation_vae_tiling,
            compile_batch_sizes=compile_sizes(settings),
        )

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.default_model not in self.models:
            self.errors[self.default_model] = (
                f"default model {self.default_model!r} is not configured; known: "
                f"{', '.join(sorted(self.models))}"
            )
            return
        if self.load_mode == "startup":
            # In the background: the service answers health (degraded: loading) meanwhile,
            # and requests wait for the model rather than fail.
            self._background = asyncio.create_task(self._quietly_load(self.default_model))

    async def _quietly_load(self, name: str) -> None:
        try:
            await self.ensure_loaded(name)
        except ServiceUnavailable:
            pass  # recorded in self.errors, reported by health

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
        self.loaded.clear()

    async def ensure_loaded(self, name: str) -> LoadedModel:
        if name in self.loaded:
            return self.loaded[name]
        async with self._locks.setdefault(name, asyncio.Lock()):
            if name not in self.loaded:
                try:
                    self.loaded[name] = await asyncio.to_thread(self._load, name)
                    self.errors.pop(name, None)
                except Exception as exc:
                    log.exception("loading model %s failed", name)
                    self.errors[name] = f"{offline_hint(name)} ({type(exc).__name__}: {exc})"
                    raise ServiceUnavailable(self.errors[name]) from exc
        return self.loaded[name]

    def _load(self, name: str) -> LoadedModel:
        import diffusers
        import torch
        import transformers

        # Loading bars are for terminals; the service logs one line per load instead.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()

        spec = self.models[name]
        family = FAMILIES[spec.family]
        device = resolve_device(self.device_setting, torch)
        dtype = resolve_dtype(spec.dtype, device, torch)
        started = time.perf_counter()
        first_mode = next(iter(family.pipelines))
        pipeline_class = getattr(diffusers, family.pipelines[first_mode])
        options: dict[str, Any] = {"dtype": dtype}
        if spec.variant:
            options["variant"] = spec.variant
        base = pipeline_class.from_pretrained(
            resolve_source(spec, self.models_path, self.cache_dir), **options
        )
        if self.cpu_offload and device == "cuda":
            base.enable_model_cpu_offload()
        else:
            base.to(device)
        if self.vae_tiling and hasattr(base, "vae"):
            base.vae.enable_tiling()
        base.set_progress_bar_config(disable=True)
        seconds = time.perf_counter() - started
        log.info(
            "loaded model %s (%s) on %s as %s in %.2fs",
            name,
            spec.family,
            device,
            str(dtype).removeprefix("torch."),
            seconds,
        )
        loaded = LoadedModel(
            name=name,
            spec=spec,
            family=family,
            base=base,
            device=device,
            dtype=str(dtype).removeprefix("torch."),
            load_seconds=seconds,
        )
        loaded.by_mode[first_mode] = base
        if self.compile_batch_sizes and spec.family in COMPILABLE_FAMILIES:
            self._compile(loaded, first_mode)
        elif self.compile_batch_sizes:
            log.warning(
                "not compiling %s: %s prompts vary in length, so a compiled model would "
                "recompile on requests; it runs eager",
                name,
                spec.family,
            )
        return loaded

    def _compile(self, loaded: LoadedModel, mode: Mode) -> None:
        """Compile the denoiser and warm it for every batch size at the default size."""
        started = time.perf_counter()
        loaded.compiled = compile_denoiser(loaded.base, self.cache_dir / "torch-compile")
        spec, family = loaded.spec, loaded.family
        size = spec.default_size or family.default_size
        guidance = spec.default_guidance
        key = CallKey(
            model=loaded.name,
            mode=mode,
            width=size,
            height=size,
            steps=2,
            guidance_scale=family.default_guidance if guidance is None else guidance,
        )
        needs_image = mode is not Mode.TEXT_TO_IMAGE
        for images in self.compile_batch_sizes:
            item = EngineItem(
                prompt="warm-up",
                negative_prompt=None,
                seed=0,
                num_images=images,
                input_image=Image.new("RGB", (size, size)) if needs_image else None,
                mask_image=Image.new("L", (size, size), 255) if mode is Mode.INPAINT else None,
            )
            self._run(loaded, EngineCall(key, [item]), _no_progress, lambda: False, warming=True)
            loaded.compiled.warmed.add(
                call_shape(spec.family, images, size, size, key.guidance_scale)
            )
        log.info(
            "compiled %s for batch sizes %s at %dx%d in %.1fs",
            loaded.name,
            list(self.compile_batch_sizes),
            size,
            size,
            time.perf_counter() - started,
        )

    # ---- requests ------------------------------------------------------------------------
    def prepare(
        self, request: GenerationRequest, input_size: tuple[int, int] | None = None
    ) -> Prepared:
        name = request.model or self.default_model
        spec = self.models.get(name)
        if spec is None:
            raise InvalidInput.field(
                "model", f"unknown model {name!r}; known: {', '.join(sorted(self.models))}"
            )
        family = FAMILIES[spec.family]
        mode = request.resolved_mode
        if mode not in family.pipelines:
            supported = ", ".join(family.pipelines)
            raise InvalidInput.field("mode", f"model {name!r} supports only: {supported}")
        try:
            extra = family.extra.model_validate(request.extra_params).model_dump(exclude_none=True)
        except ValidationError as exc:
            details = [
                {**d, "field": f"extra_params.{d['field']}"}
                for d in validation_details(exc.errors())
            ]
            raise InvalidInput(
                "; ".join(f"{d['field']}: {d['message']}" for d in details), details=details
            ) from exc
        warnings: list[str] = []
        if spec.source.startswith(BUILTIN_SOURCE):
            warnings.append(f"{name} has random weights: its images are noise")
        if request.negative_prompt and not family.negative_prompt:
            warnings.append(f"{spec.family} models ignore negative_prompt")
        width, height = self._size(request, spec, family, input_size, warnings)
        key = CallKey(
            model=name,
            mode=mode,
            width=width,
            height=height,
            steps=request.steps or spec.default_steps or family.default_steps,
            guidance_scale=(
                request.guidance_scale
                if request.guidance_scale is not None
                else spec.default_guidance
                if spec.default_guidance is not None
                else family.default_guidance
            ),
            extra=tuple(sorted(extra.items())),
        )
        return Prepared(key=key, warnings=tuple(warnings))

    @staticmethod
    def _size(
        request: GenerationRequest,
        spec: ModelSpec,
        family: Family,
        input_size: tuple[int, int] | None,
        warnings: list[str],
    ) -> tuple[int, int]:
        default = spec.default_size or family.default_size
        width = request.width or (input_size[0] if input_size else default)
        height = request.height or (input_size[1] if input_size else default)
        multiple = family.size_multiple
        rounded = (
            max(multiple, width // multiple * multiple),
            max(multiple, height // multiple * multiple),
        )
        if rounded != (width, height):
            warnings.append(
                f"size {width}x{height} rounded to {rounded[0]}x{rounded[1]} "
                f"(multiples of {multiple})"
            )
        return rounded

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        loaded = await self.ensure_loaded(call.key.model)
        return await asyncio.to_thread(self._run, loaded, call, progress, cancelled)

    def _run(
        self,
        loaded: LoadedModel,
        call: EngineCall,
        progress: ProgressFn,
        cancelled: CancelledFn,
        *,
        warming: bool = False,
    ) -> EngineOutput:
        import torch

        key = call.key
        pipeline = loaded.pipeline(key.mode)
        if loaded.compiled is not None:
            shape = call_shape(
                loaded.spec.family, call.num_images, key.width, key.height, key.guidance_scale
            )
            loaded.compiled.use_for(pipeline, shape, warming=warming)
        prompts, negatives, images, masks, generators = [], [], [], [], []
        for item in call.items:
            for index in range(item.num_images):
                prompts.append(item.prompt)
                negatives.append(item.negative_prompt)
                generators.append(torch.Generator("cpu").manual_seed(item.seed + index))
                if item.input_image is not None:
                    images.append(_fit(item.input_image, key.width, key.height))
                if item.mask_image is not None:
                    masks.append(_fit(item.mask_image, key.width, key.height))
        kwargs = call_kwargs(
            loaded.family,
            key.mode,
            prompts=prompts,
            negatives=negatives,
            images=images or None,
            masks=masks or None,
            width=key.width,
            height=key.height,
            steps=key.steps,
            guidance=key.guidance_scale,
            extra=dict(key.extra),
        )
        accepted = inspect.signature(pipeline.__call__).parameters
        for optional in ("width", "height"):
            if optional not in accepted:
                kwargs.pop(optional)  # e.g. SD image-to-image takes the input's size
        first_image = [0]
        for item in call.items[:-1]:
            first_image.append(first_image[-1] + item.num_images)
        preview_every = [item.wants_preview_every for item in call.items]
        steps_run = 0

        def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> Any:
            nonlocal steps_run
            steps_run = step + 1
            total = int(getattr(pipe, "num_timesteps", 0) or key.steps)
            previews: list[Image.Image | None] = [None] * len(call.items)
            if any(e and steps_run % e == 0 for e in preview_every) and "latents" in tensors:
                latents = tensors["latents"]
                previews = [
                    latent_preview(latents[first]) if every and steps_run % every == 0 else None
                    for first, every in zip(first_image, preview_every, strict=True)
                ]
            progress(steps_run, total, previews)
            if cancelled():
                pipe._interrupt = True
            return tensors

        with torch.inference_mode(), condition_area(loaded.spec):
            output = pipeline(generator=generators, callback_on_step_end=on_step_end, **kwargs)
        flat = list(output.images)
        per_item, start = [], 0
        for item in call.items:
            per_item.append(flat[start : start + item.num_images])
            start += item.num_images
        return EngineOutput(images=per_item, steps_run=steps_run, interrupted=cancelled())

    def health(self) -> EngineHealth:
        default = self.loaded.get(self.default_model)
        detail: dict[str, Any] = {
            "default_model": self.default_model,
            "models_loaded": sorted(self.loaded),
            "models_available": sorted(self.models),
            "load_mode": self.load_mode,
        }
        if default is not None:
            detail.update(
                device=default.device,
                dtype=default.dtype,
                family=default.spec.family,
                load_seconds=round(default.load_seconds, 3),
                description=default.spec.description,
            )
            if default.compiled is not None:
                detail["compile"] = default.compiled.report()
        error = self.errors.get(self.default_model)
        if default is None and error is None:
            detail["state"] = "loading" if self.load_mode == "startup" else "loads on first use"
        return EngineHealth(
            ready=default is not None or (self.load_mode == "lazy" and error is None),
            detail=detail,
            error=error,
            gpu_available=default is not None and default.device == "cuda",
        )

    def describe_workflows(self) -> WorkflowListing | None:
        return None  # models, not workflows


def _no_progress(step: int, total: int, previews: list[Image.Image | None]) -> None:
    pass


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height))
