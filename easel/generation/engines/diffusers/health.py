"""What the diffusers engine's health says: the default model's state, device and load
time, the models loaded and loading. Ready while the default model is loaded or loads on
the next request (lazily, or again after it was unloaded to make room)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from easel.generation.engines.base import EngineHealth

if TYPE_CHECKING:
    from easel.generation.engines.diffusers.engine import DiffusersEngine


def engine_health(engine: DiffusersEngine) -> EngineHealth:
    default = engine.loaded.get(engine.default_model)
    detail: dict[str, Any] = {
        "default_model": engine.default_model,
        "models_loaded": sorted(engine.loaded),
        "models_available": sorted(engine.models),
        "load_mode": engine.load_mode,
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
    error = engine.errors.get(engine.default_model)
    state = _default_state(engine)
    if state is not None:
        detail["state"] = state
    if engine.loading:
        detail["models_loading"] = sorted(engine.loading)
    # Unloaded after a load (evicted, or asked to), it loads again on the next request.
    loads_on_use = engine.load_mode == "lazy" or engine.default_model in engine.ever_loaded
    return EngineHealth(
        ready=default is not None or (loads_on_use and error is None),
        detail=detail,
        error=error,
        gpu_available=any(loaded.device == "cuda" for loaded in engine.loaded.values()),
        loading=engine.default_model in engine.loading,
    )


def _default_state(engine: DiffusersEngine) -> str | None:
    """What the default model is doing, unless loaded (or failed: health says why)."""
    name = engine.default_model
    if name in engine.loading:
        return "loading"
    if name in engine.loaded or name in engine.errors:
        return None
    refused = engine.on_unloaded == "refuse"
    if name in engine.ever_loaded:
        return "not loaded" if refused else "unloaded; loads on the next request"
    if engine.load_mode == "startup":
        return "loading"
    return "not loaded" if refused else "loads on first use"
