"""Which files of a diffusers repo a pipeline needs, and which easel family it is.

A hub repo often holds the weights several times over: `.bin` and `.safetensors`, fp16
and full precision, ONNX, Flax, OpenVINO exports. A pipeline needs `model_index.json`, each
component's config, tokenizer and scheduler files, and one set of safetensors weights: the
chosen variant's (`*.fp16.safetensors`), else the plain ones. Choosing the exact files
from the repo's listing (rather than by patterns) lets a component without the variant
fall back to its plain weights, as diffusers' own loading does.

Pure functions of the listing and model_index.json: no network, no ML library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from easel.generation.settings import ModelFamily

MODEL_INDEX = "model_index.json"
WEIGHTS = ".safetensors"
# The small files a component is read from besides its weights.
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")
# Other weight formats: never fetched.
OTHER_WEIGHTS = (".bin", ".ckpt", ".pt", ".pth", ".onnx", ".onnx_data", ".msgpack", ".h5", ".xml")

# model_index.json's `_class_name` -> the family that runs it.
PIPELINE_FAMILIES: dict[str, str] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "FluxPipeline": "flux",
    "FluxImg2ImgPipeline": "flux",
    "FluxInpaintPipeline": "flux",
    "QwenImagePipeline": "qwen-image",
    "QwenImageImg2ImgPipeline": "qwen-image",
    "QwenImageInpaintPipeline": "qwen-image",
    "QwenImageEditPipeline": "qwen-image-edit",
    "QwenImageEditPlusPipeline": "qwen-image-edit-plus",
}
FAMILY_NAMES: tuple[str, ...] = get_args(ModelFamily)

_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


class PullError(Exception):
    """Why a model cannot be pulled, in one line that says what to do."""


def file_variant(name: str) -> str | None:
    """The variant of a safetensors weights file or shard index: `x.fp16.safetensors`,
    `x-00001-of-00002.fp16.safetensors`, `x.fp16-00001-of-00002.safetensors` and
    `x.safetensors.index.fp16.json` are fp16; `x.safetensors` and its index none."""
    if ".safetensors.index." in name:
        parts = name.split(".safetensors.index.", 1)[1].split(".")
        return parts[0] if len(parts) == 2 else None
    parts = name.removesuffix(WEIGHTS).split(".")
    return (_SHARD.sub("", parts[-1]) or None) if len(parts) > 1 else None


def _is_weights(name: str) -> bool:
    return name.endswith(WEIGHTS) or ".safetensors.index." in name


def _is_config(name: str) -> bool:
    # Shard indexes are .json too: the safetensors ones go with their weights, the
    # others (`pytorch_model.bin.index.json`) not at all.
    return name.endswith(CONFIG_SUFFIXES) and ".index." not in name


def components(model_index: Mapping[str, Any]) -> list[str]:
    """The component folders model_index.json names (`[library, class]`, not `[null, null]`)."""
    return [
        key
        for key, value in model_index.items()
        if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None
    ]


def _component_files(files: list[str], component: str) -> list[str]:
    prefix = component + "/"
    return [f for f in files if f.startswith(prefix) and "/" not in f[len(prefix) :]]


def _weights_of(component: str, inside: list[str], variant: str | None) -> list[str]:
    weights = [f for f in inside if _is_weights(f)]
    if not weights:
        if any(f.endswith(OTHER_WEIGHTS) for f in inside):
            raise PullError(f"{component} has no safetensors weights (only other formats)")
        return []  # a scheduler, a tokenizer: configuration only
    picked = [f for f in weights if file_variant(f) == variant]
    if not picked and variant is not None:
        picked = [f for f in weights if file_variant(f) is None]  # diffusers falls back too
    if not picked:
        found = sorted({v for f in weights if (v := file_variant(f))})
        raise PullError(
            f"{component} has no plain safetensors weights, only the variants "
            f"{', '.join(found)}: pass --variant {found[0]}"
        )
    return picked


def choose_files(
    files: Iterable[str], model_index: Mapping[str, Any], variant: str | None
) -> list[str]:
    """The repo files (as listed) the pipeline loads from, in `variant` (None: plain)."""
    listed = sorted(files)
    chosen = [MODEL_INDEX]
    with_variant = False
    for component in components(model_index):
        inside = _component_files(listed, component)
        chosen += [f for f in inside if _is_config(f)]
        weights = _weights_of(component, inside, variant)
        with_variant = with_variant or any(file_variant(f) == variant for f in weights)
        chosen += weights
    if variant is not None and not with_variant:
        raise PullError(f"no component has {variant} weights: pull without --variant")
    return chosen


def detect_family(model_index: Mapping[str, Any], hub_id: str) -> str:
    """The family of the repo's pipeline class, or a PullError asking for --family."""
    pipeline = str(model_index.get("_class_name", "?"))
    family = PIPELINE_FAMILIES.get(pipeline)
    if family is None or family not in FAMILY_NAMES:
        raise PullError(
            f"cannot tell the family of {hub_id} (its pipeline is {pipeline}): pass "
            f"--family, one of {', '.join(FAMILY_NAMES)}"
        )
    return family
