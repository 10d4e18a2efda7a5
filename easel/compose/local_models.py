"""`easel models list --local`: the models this machine knows without a server (the
built-in catalogue, the pulled ones, EASEL_GENERATION_MODELS), each with where its
weights are, so one can tell what loads offline before starting anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from easel.generation.engines.diffusers.models import BUILTIN_SOURCE, CATALOGUE, resolve_source
from easel.generation.pulled import pulled_models
from easel.generation.settings import GenerationSettings, ModelSpec

BUILT = "built from code"
MISSING = "missing"
HUB_CACHE = "hub cache"


@dataclass(frozen=True)
class LocalModel:
    name: str
    family: str
    variant: str | None
    source: str
    origin: str  # "built-in", "pulled" or "configured"
    weights: str  # where they are: a folder, HUB_CACHE, BUILT or MISSING
    description: str


def weights_location(spec: ModelSpec, models_path: Path, cache_dir: Path) -> str:
    """Where `spec`'s weights would load from with no network (the engine's own resolution)."""
    if spec.source.startswith(BUILTIN_SOURCE):
        return BUILT
    try:
        resolved = resolve_source(spec, models_path, cache_dir)
    except FileNotFoundError:
        return MISSING
    if Path(resolved).is_dir():
        return resolved
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(resolved, "model_index.json")
    return HUB_CACHE if isinstance(cached, str) else MISSING


def local_models(generation: GenerationSettings) -> list[LocalModel]:
    """Every model the engine would know, in its order of precedence (later wins)."""
    pulled = pulled_models(generation.models_path)
    layers = (
        ("built-in", CATALOGUE),
        ("pulled", pulled),
        ("configured", generation.generation_models),
    )
    merged: dict[str, tuple[str, ModelSpec]] = {}
    for origin, specs in layers:
        merged.update({name: (origin, spec) for name, spec in specs.items()})
    cache_dir = generation.data_dir / "models"
    return [
        LocalModel(
            name=name,
            family=spec.family,
            variant=spec.variant,
            source=spec.source,
            origin=origin,
            weights=weights_location(spec, generation.models_path, cache_dir),
            description=spec.description,
        )
        for name, (origin, spec) in merged.items()
    ]
