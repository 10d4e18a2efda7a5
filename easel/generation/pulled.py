"""The models `easel models pull` fetched: their catalogue entries, kept beside their weights
in `MODELS_PATH/easel-models.json`, so that `EASEL_GENERATION_MODEL=<name>` works with no
other configuration, and a models folder copied to another machine (or mounted as a
volume) brings its entries along. The diffusers engine merges them over the built-in
catalogue; EASEL_GENERATION_MODELS still wins over both.

    {"my-sdxl": {"source": "my-sdxl", "family": "sdxl", "variant": "fp16", ...}}

`source` is the model's folder under MODELS_PATH; the other fields are a `ModelSpec`'s.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from easel.generation.settings import GenerationSettings, ModelSpec

log = logging.getLogger("easel.generation.pulled")

PULLED_FILE = "easel-models.json"


def _read(models_path: Path) -> dict[str, Any]:
    path = models_path / PULLED_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        # A broken file must not stop the service: the built-in models still work.
        log.warning("ignoring %s: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("ignoring %s: not a JSON object", path)
        return {}
    return data


def pulled_models(models_path: Path) -> dict[str, ModelSpec]:
    """The pulled models' entries (none without the file; a bad entry is skipped, said in
    the log)."""
    entries: dict[str, ModelSpec] = {}
    for name, raw in _read(models_path).items():
        try:
            entries[name] = ModelSpec.model_validate(raw)
        except ValidationError as exc:
            log.warning("ignoring pulled model %r in %s: %s", name, PULLED_FILE, exc)
    return entries


def configured_models(settings: GenerationSettings) -> dict[str, ModelSpec]:
    """Every model the service knows: built-in, then pulled, then EASEL_GENERATION_MODELS
    (a later one of the same name wins)."""
    # Here, not at the top: the diffusers engine package imports this module.
    from easel.generation.engines.diffusers.models import CATALOGUE

    return {**CATALOGUE, **pulled_models(settings.models_path), **settings.generation_models}


def record_pulled(models_path: Path, name: str, spec: ModelSpec) -> Path:
    """Add (or replace) `name`'s entry, keeping the others as they are; the file is
    replaced at once, so a reader never sees half of it."""
    data = _read(models_path)
    data[name] = spec.model_dump(exclude_defaults=True) | {"source": spec.source}
    data[name]["family"] = spec.family  # said even where it is the default
    path = models_path / PULLED_FILE
    models_path.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)
    return path
