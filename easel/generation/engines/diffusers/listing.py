"""One model as `GET /api/models` lists it: what it is, where its weights come from (named,
never an absolute local path), and whether it is loaded, where, and how big."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from easel.core.paths import public_path
from easel.generation.engines.diffusers.families import FAMILIES
from easel.generation.engines.diffusers.loading import LoadedModel
from easel.generation.engines.diffusers.models import BUILTIN_SOURCE
from easel.generation.settings import ModelSpec


class ModelState:
    LOADED = "loaded"
    LOADING = "loading"
    NOT_LOADED = "not loaded"
    FAILED = "failed"


def public_source(spec: ModelSpec, folders: dict[str, Path]) -> str:
    """A hub id or a built-in name as configured; a folder under the label of the folder
    it lies in (`MODELS_PATH/my-model`), or by its name alone."""
    source = spec.source
    if source.startswith(BUILTIN_SOURCE):
        return source
    path = Path(source).expanduser()
    models_path = folders["MODELS_PATH"]
    if not path.is_absolute() and not source.startswith(".") and not (models_path / path).is_dir():
        return source  # a hub id (or a folder that is not there: named as configured)
    folder = path if path.is_absolute() else models_path / path
    return public_path(folder, folders)


def model_entry(
    name: str,
    spec: ModelSpec,
    *,
    folders: dict[str, Path],
    default: bool,
    loaded: LoadedModel | None,
    loading: bool,
    error: str | None,
    memory_bytes: int | None,
) -> dict[str, Any]:
    if loaded is not None:
        state = ModelState.LOADED
    elif loading:
        state = ModelState.LOADING
    else:
        state = ModelState.FAILED if error is not None else ModelState.NOT_LOADED
    return {
        "name": name,
        "family": spec.family,
        "description": spec.description,
        "modes": [str(mode) for mode in FAMILIES[spec.family].pipelines],
        "source": public_source(spec, folders),
        "loaded": loaded is not None,
        "default": default,
        "state": state,
        "error": error if state == ModelState.FAILED else None,
        "device": loaded.device if loaded is not None else None,
        "dtype": loaded.dtype if loaded is not None else None,
        "memory_bytes": memory_bytes,
        "load_seconds": round(loaded.load_seconds, 3) if loaded is not None else None,
    }
