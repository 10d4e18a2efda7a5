"""What one call sets on a loaded model's pipeline and takes back after: its LoRA adapters
at their weights, and its scheduler.

A model's pipelines (one per mode, made with from_pipe) share their components, so an
adapter loaded through one sits in the denoiser every mode runs: adapters are loaded once
per model (`ModelTuning`, kept on LoadedModel) and every call sets them, or turns them
off, before it runs; none leaks into a call that did not ask for it. A chosen scheduler
is assigned to the called pipeline for the call alone and the model's own put back after.
The caller holds `ModelTuning.lock` from the first change to the last restore.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from easel.core.errors import InvalidInput, ServiceUnavailable
from easel.generation.engines.base import CallKey
from easel.generation.engines.diffusers.adapters import AdapterCatalogue
from easel.generation.engines.diffusers.schedulers import build_scheduler, name_of

log = logging.getLogger("easel.generation.diffusers")


@dataclass
class ModelTuning:
    """One loaded model's adapters and schedulers, built once and reused by its calls."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: set[str] = field(default_factory=set)  # loaded into its denoiser (by name)
    schedulers: dict[str, Any] = field(default_factory=dict)  # by name


@contextmanager
def tuned(
    tuning: ModelTuning,
    pipeline: Any,
    family: str,
    key: CallKey,
    catalogue: AdapterCatalogue | None,
) -> Iterator[str]:
    """The call's adapters and scheduler set on `pipeline` while the block runs; yields
    the name of the scheduler that runs (the model's own when the key names none)."""
    _set_adapters(tuning, pipeline, key.loras, catalogue)
    own = pipeline.scheduler
    if key.scheduler is None:
        yield name_of(own, family)
        return
    chosen = tuning.schedulers.get(key.scheduler)
    if chosen is None:
        chosen = tuning.schedulers[key.scheduler] = build_scheduler(key.scheduler, family, own)
    pipeline.scheduler = chosen
    try:
        yield key.scheduler
    finally:
        pipeline.scheduler = own


def _set_adapters(
    tuning: ModelTuning,
    pipeline: Any,
    loras: tuple[tuple[str, float], ...],
    catalogue: AdapterCatalogue | None,
) -> None:
    if not loras:
        if tuning.adapters:
            pipeline.disable_lora()  # loaded for earlier calls, off for this one
        return
    if not hasattr(pipeline, "load_lora_weights"):
        raise InvalidInput.field("loras", f"{type(pipeline).__name__} takes no LoRA adapters")
    for index, (name, _weight) in enumerate(loras):
        if name not in tuning.adapters:
            _load(pipeline, name, index, catalogue)
            tuning.adapters.add(name)
    # set_adapters activates and weighs; it does not undo an earlier disable_lora.
    pipeline.enable_lora()
    pipeline.set_adapters([name for name, _ in loras], adapter_weights=[w for _, w in loras])


def _load(pipeline: Any, name: str, index: int, catalogue: AdapterCatalogue | None) -> None:
    field_name = f"loras[{index}].name"
    adapter = catalogue.adapters().get(name) if catalogue is not None else None
    if adapter is None:  # removed from the folder since the request was admitted
        raise InvalidInput.field(field_name, f"adapter {name!r} is no longer available")
    try:
        pipeline.load_lora_weights(
            adapter.source, weight_name=adapter.weight_name, adapter_name=name
        )
    except OSError as exc:  # a hub adapter not downloadable here, a file gone
        log.error("reading LoRA adapter %s from %s failed", name, adapter.source, exc_info=exc)
        raise ServiceUnavailable(
            f"cannot read LoRA adapter {name!r} ({type(exc).__name__}); without internet, "
            "put it under MODELS_PATH/loras"
        ) from exc
    except (RuntimeError, ValueError) as exc:  # its layers' shapes are not this model's
        log.warning("LoRA adapter %s does not fit: %s", name, exc)
        raise InvalidInput.field(
            field_name, f"adapter {name!r} does not fit this model's layers"
        ) from exc
    log.info("loaded LoRA adapter %s (%s)", name, adapter.shown)
