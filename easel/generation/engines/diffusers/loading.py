"""Pipelines from disk: one model's weights loaded once, on its device in its dtype, with
the configured offload and tiling, and (when compiling) its denoiser compiled and warmed
for every batch size before any request runs. Blocking: the engine calls it in a thread."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from easel.core.generation_api import Mode
from easel.generation.engines.base import CallKey, EngineCall, EngineItem, ItemProgress
from easel.generation.engines.diffusers.adapters import AdapterCatalogue
from easel.generation.engines.diffusers.compilation import (
    COMPILABLE_FAMILIES,
    CompiledDenoiser,
    call_shape,
    compile_denoiser,
)
from easel.generation.engines.diffusers.control import ControlNets
from easel.generation.engines.diffusers.control_pipelines import ControlCache
from easel.generation.engines.diffusers.families import FAMILIES, Family
from easel.generation.engines.diffusers.hub import HubReach, ModelNotCached, not_cached_message
from easel.generation.engines.diffusers.models import (
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from easel.generation.engines.diffusers.running import run_call
from easel.generation.engines.diffusers.tuning import ModelTuning
from easel.generation.settings import ModelSpec

log = logging.getLogger("easel.generation.diffusers")


@dataclass(frozen=True)
class LoadOptions:
    """How every model of an engine is loaded (from the engine's settings)."""

    models_path: Path
    cache_dir: Path
    device: str = "auto"
    cpu_offload: bool = False
    vae_tiling: bool = False
    compile_batch_sizes: tuple[int, ...] = ()  # empty: no torch.compile
    hub: HubReach | None = None  # None: hub ids load as from_pretrained does on its own
    # Weights read into memory in the dtype `device` will use, and left there for `place`:
    # the CPU half of a load, which a memory snapshot keeps (Modal; `device` may have no
    # GPU yet).
    staging: bool = False
    controlnets: ControlNets = field(default_factory=ControlNets)  # what `control` may use
    adapters: AdapterCatalogue = field(default_factory=AdapterCatalogue)  # what `loras` may


@dataclass
class LoadedModel:
    name: str
    spec: ModelSpec
    family: Family
    base: Any  # the pipeline of the family's first mode (text-to-image, or its only one)
    device: str
    dtype: str
    load_seconds: float
    by_mode: dict[Mode, Any] = field(default_factory=dict)
    compiled: CompiledDenoiser | None = None
    staged_for: str | None = None  # in memory, waiting for `place` on this device
    controls: ControlCache | None = None  # its ControlNets, loaded on first use
    tuning: ModelTuning = field(default_factory=ModelTuning)  # its LoRAs and schedulers

    def holdings(self) -> list[Any]:
        """Every pipeline and module this model holds weights in, for `weights_bytes`
        (which counts what they share once): its pipelines per mode, its ControlNets and
        their pipelines."""
        held: list[Any] = [self.base, *self.by_mode.values()]
        if self.controls is not None:
            held += [*self.controls.nets.values(), *self.controls.pipelines.values()]
        return held

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


def load_model(name: str, spec: ModelSpec, options: LoadOptions) -> LoadedModel:
    """Read the weights and put them on their device (or, staging, only read them)."""
    loaded = read_weights(name, spec, options)
    if not options.staging:
        place(loaded, options)
    return loaded


def read_weights(name: str, spec: ModelSpec, options: LoadOptions) -> LoadedModel:
    """The pipeline in memory, in the dtype of the device it will run on."""
    import diffusers
    import torch
    import transformers

    # Loading bars are for terminals; the service logs one line per load instead.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()

    family = FAMILIES[spec.family]
    device = resolve_device(options.device, torch)
    dtype = staging_dtype(spec.dtype, device, torch) if options.staging else None
    dtype = dtype or resolve_dtype(spec.dtype, device, torch)
    started = time.perf_counter()
    first_mode = next(iter(family.pipelines))
    pipeline_class = getattr(diffusers, family.pipelines[first_mode])
    from_pretrained: dict[str, Any] = {"dtype": dtype}
    if spec.variant:
        from_pretrained["variant"] = spec.variant
    source = resolve_source(spec, options.models_path, options.cache_dir)
    hub = options.hub
    # A hub id while the hub is unreachable: the local cache only, no retries.
    cache_only = hub is not None and not Path(source).is_dir() and not hub.reachable()
    if cache_only:
        from_pretrained["local_files_only"] = True
    try:
        base = pipeline_class.from_pretrained(source, **from_pretrained)
    except OSError as exc:  # diffusers' "not fully cached locally" (and its kin)
        if hub is not None and cache_only:
            raise ModelNotCached(not_cached_message(name, source, hub.why_unreachable)) from exc
        raise
    base.set_progress_bar_config(disable=True)
    loaded = LoadedModel(
        name=name,
        spec=spec,
        family=family,
        base=base,
        device="cpu",
        dtype=str(dtype).removeprefix("torch."),
        load_seconds=time.perf_counter() - started,
        staged_for=device,
    )
    loaded.by_mode[first_mode] = base
    loaded.controls = ControlCache(options.controlnets, options.models_path, options.cache_dir)
    if options.staging:
        log.info("read model %s into memory for %s in %.2fs", name, device, loaded.load_seconds)
    return loaded


def staging_dtype(setting: str, device: str, torch: Any) -> Any | None:
    """The dtype of a staged load, or None for `resolve_dtype`'s. `auto` on CUDA stages
    bfloat16 without asking the GPU: before a memory snapshot there is none, and torch
    would remember that answer after the restore. `place` turns it to float16 on a GPU
    without bfloat16 (every GPU Modal offers for generation has it)."""
    if setting == "auto" and device == "cuda":
        return torch.bfloat16
    return None


def place(loaded: LoadedModel, options: LoadOptions) -> None:
    """Put read weights on their device, with the configured offload and tiling, and
    (compiling) warm the compiled denoiser. Blocking; once per load."""
    import torch

    device = loaded.staged_for or loaded.device
    started = time.perf_counter()
    base = loaded.base
    staged_auto = loaded.spec.dtype == "auto" and loaded.dtype == "bfloat16"
    if device == "cuda" and staged_auto and not torch.cuda.is_bf16_supported():
        base.to(dtype=torch.float16)
        loaded.dtype = "float16"
    if options.cpu_offload and device == "cuda":
        base.enable_model_cpu_offload()
    else:
        base.to(device)
    if options.vae_tiling and hasattr(base, "vae"):
        base.vae.enable_tiling()
    loaded.device, loaded.staged_for = device, None
    loaded.load_seconds += time.perf_counter() - started
    spec = loaded.spec
    log.info(
        "loaded model %s (%s) on %s as %s in %.2fs",
        loaded.name,
        spec.family,
        device,
        loaded.dtype,
        loaded.load_seconds,
    )
    first_mode = next(iter(loaded.family.pipelines))
    if options.compile_batch_sizes and spec.family in COMPILABLE_FAMILIES:
        warm_compiled(loaded, first_mode, options)
    elif options.compile_batch_sizes:
        log.warning(
            "not compiling %s: %s prompts vary in length, so a compiled model would "
            "recompile on requests; it runs eager",
            loaded.name,
            spec.family,
        )


def warm_compiled(loaded: LoadedModel, mode: Mode, options: LoadOptions) -> None:
    """Compile the denoiser and warm it for every batch size at the default size: a request
    then finds its shape compiled, or runs eager, and never waits for a compile."""
    started = time.perf_counter()
    loaded.compiled = compile_denoiser(loaded.base, options.cache_dir / "torch-compile")
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
    for images in options.compile_batch_sizes:
        item = EngineItem(
            prompt="warm-up",
            negative_prompt=None,
            seed=0,
            num_images=images,
            input_image=Image.new("RGB", (size, size)) if needs_image else None,
            mask_image=Image.new("L", (size, size), 255) if mode is Mode.INPAINT else None,
        )
        run_call(loaded, EngineCall(key, [item]), _no_progress, lambda: False, warming=True)
        loaded.compiled.warmed.add(call_shape(spec.family, images, size, size, key.guidance_scale))
    log.info(
        "compiled %s for batch sizes %s at %dx%d in %.1fs",
        loaded.name,
        list(options.compile_batch_sizes),
        size,
        size,
        time.perf_counter() - started,
    )


def _no_progress(items: list[ItemProgress | None]) -> None:
    pass
