"""A loaded model's ControlNet pipelines: each ControlNet's weights read the first time a
call uses it, once per process, on the model's device and in its dtype; each pipeline
built once per (mode, ControlNets) with `from_pipe`, which shares the model's loaded
components, so a ControlNet costs only its own weights. Blocking: run in the call's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from easel.core.errors import ServiceUnavailable
from easel.core.generation_api import Mode
from easel.generation.engines.base import CallKey
from easel.generation.engines.diffusers.control import ControlNets
from easel.generation.engines.diffusers.models import resolve_source
from easel.generation.settings import ModelSpec

if TYPE_CHECKING:  # loading.py keeps a ControlCache on each loaded model
    from easel.generation.engines.diffusers.loading import LoadedModel

log = logging.getLogger("easel.generation.diffusers")

# The diffusers class of a family's ControlNets ((family, union) -> class), and what
# several of them combine into, where the pipeline does not wrap a list itself.
MODEL_CLASSES = {
    ("sd", False): "ControlNetModel",
    ("sdxl", False): "ControlNetModel",
    ("sdxl", True): "ControlNetUnionModel",
    ("qwen-image", False): "QwenImageControlNetModel",
}
MULTI_CLASSES = {"qwen-image": "QwenImageMultiControlNetModel"}


@dataclass
class ControlCache:
    """One loaded model's ControlNets and ControlNet pipelines, made on first use."""

    controlnets: ControlNets
    models_path: Path
    cache_dir: Path
    nets: dict[str, Any] = field(default_factory=dict)
    pipelines: dict[tuple[Mode, tuple[str, ...]], Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def control_pipeline(loaded: LoadedModel, key: CallKey) -> Any:
    """The pipeline that runs `key`'s mode with its controls' ControlNets."""
    import diffusers

    cache = loaded.controls
    assert cache is not None, "a loaded model has its ControlCache"
    family = loaded.spec.family
    names = cache.controlnets.select(family, [control.type for control in key.control])
    assert names is not None, "prepare refused controls without ControlNets"
    with cache.lock:
        if (key.mode, names) not in cache.pipelines:
            nets = [_net(loaded, cache, name) for name in names]
            controlnet: Any = nets[0] if len(nets) == 1 else nets
            if len(nets) > 1 and family in MULTI_CLASSES:
                # One net, several condition images (prepare refused several nets).
                controlnet = getattr(diffusers, MULTI_CLASSES[family])(nets[:1])
            # A list becomes the pipeline's MultiControlNet(Union)Model; one ControlNet used
            # by two controls appears twice in it, run once for each.
            pipeline_class = getattr(
                diffusers, cache.controlnets.pipeline_class(family, names, key.mode)
            )
            pipeline = pipeline_class.from_pipe(loaded.base, controlnet=controlnet)
            pipeline.set_progress_bar_config(disable=True)
            if getattr(loaded.base, "_offload_gpu_id", None) is not None:
                pipeline.enable_model_cpu_offload()  # from_pipe drops the offload hooks
            cache.pipelines[(key.mode, names)] = pipeline
        return cache.pipelines[(key.mode, names)]


def _net(loaded: LoadedModel, cache: ControlCache, name: str) -> Any:
    if name in cache.nets:
        return cache.nets[name]
    import diffusers
    import torch

    spec = cache.controlnets.specs[name]
    started = time.perf_counter()
    # The model's own resolution of a source: a folder, a built-in tiny one, or a hub id.
    source = resolve_source(ModelSpec(source=spec.source), cache.models_path, cache.cache_dir)
    model_class = getattr(diffusers, MODEL_CLASSES[(spec.family, spec.union)])
    options: dict[str, Any] = {"dtype": getattr(torch, loaded.dtype)}
    if spec.variant:
        options["variant"] = spec.variant
    try:
        net = model_class.from_pretrained(source, **options)
    except OSError as exc:  # not on the hub or not cached (offline), not a ControlNet folder
        raise ServiceUnavailable(
            f"cannot load ControlNet {name!r} ({spec.source}): {type(exc).__name__}"
        ) from exc
    if getattr(loaded.base, "_offload_gpu_id", None) is None:
        net.to(loaded.device)
    cache.nets[name] = net
    log.info(
        "loaded ControlNet %s for %s on %s in %.2fs",
        name,
        loaded.name,
        loaded.device,
        time.perf_counter() - started,
    )
    return net
