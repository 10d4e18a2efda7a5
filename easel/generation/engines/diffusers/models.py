"""The model catalogue and where a model's weights, device and dtype come from.

Nothing here imports torch at module level: the gateway builds the generation app (for its
docs) without the ML stack.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from easel.generation.settings import ModelSpec
from easel.generation.tiny import BUILDERS, ensure_built

BUILTIN_SOURCE = "builtin:"

CATALOGUE: dict[str, ModelSpec] = {
    "sd-turbo": ModelSpec(
        source="stabilityai/sd-turbo",
        family="sd",
        default_steps=1,
        default_guidance=0.0,
        default_size=512,
        description="Stable Diffusion Turbo: 1-step 512px text-to-image.",
    ),
    "sdxl-turbo": ModelSpec(
        source="stabilityai/sdxl-turbo",
        family="sdxl",
        default_steps=1,
        default_guidance=0.0,
        default_size=512,
        description="SDXL Turbo: 1-step text-to-image.",
    ),
    "qwen-image-edit": ModelSpec(
        source="Qwen/Qwen-Image-Edit",
        family="qwen-image-edit",
        dtype="bfloat16",
        description="Qwen-Image-Edit: instruction edits (needs a large GPU).",
    ),
    "qwen-image": ModelSpec(
        source="Qwen/Qwen-Image",
        family="qwen-image",
        dtype="bfloat16",
        description="Qwen-Image: text-to-image, image-to-image and inpaint (large GPU).",
    ),
    "qwen-image-edit-plus": ModelSpec(
        source="Qwen/Qwen-Image-Edit-2509",
        family="qwen-image-edit-plus",
        dtype="bfloat16",
        description="Qwen-Image-Edit-Plus (2509): edits reading several input images (large GPU).",
    ),
    "tiny-random-xl": ModelSpec(
        source=BUILTIN_SOURCE + "tiny-random-xl",
        family="sdxl",
        default_steps=4,
        default_guidance=5.0,
        default_size=64,
        description="SDXL classes with random weights, built locally: NOISE.",
    ),
    "tiny-random-qwen-edit": ModelSpec(
        source=BUILTIN_SOURCE + "tiny-random-qwen-edit",
        family="qwen-image-edit",
        default_steps=2,
        default_guidance=4.0,
        default_size=64,
        condition_area=64 * 64,
        description="Qwen-Image-Edit classes with random weights, built locally: NOISE.",
    ),
    "tiny-random-qwen-edit-plus": ModelSpec(
        source=BUILTIN_SOURCE + "tiny-random-qwen-edit-plus",
        family="qwen-image-edit-plus",
        default_steps=2,
        default_guidance=4.0,
        default_size=64,
        condition_area=64 * 64,
        description="Qwen-Image-Edit-Plus classes with random weights, built locally: NOISE.",
    ),
    "tiny-random-qwen-image": ModelSpec(
        source=BUILTIN_SOURCE + "tiny-random-qwen-image",
        family="qwen-image",
        default_steps=2,
        default_guidance=4.0,
        default_size=64,
        description="Qwen-Image classes with random weights, built locally: NOISE.",
    ),
    "tiny-random": ModelSpec(
        source=BUILTIN_SOURCE + "tiny-random",
        family="sd",
        default_steps=4,
        default_guidance=5.0,
        default_size=64,
        description="Random weights, built locally, no download: produces NOISE. For "
        "checking the whole path offline.",
    ),
}


def offline_hint(name: str) -> str:
    return (
        f"cannot load model {name!r}. Without internet, put a diffusers model folder under "
        'MODELS_PATH and declare it, e.g. EASEL_GENERATION_MODELS=\'{"mine": {"source": '
        '"my-model", "family": "sd"}}\' EASEL_GENERATION_MODEL=mine; or check the '
        "pipeline with EASEL_GENERATION_MODEL=tiny-random (noise)"
    )


def resolve_source(spec: ModelSpec, models_path: Path, cache_dir: Path) -> str:
    """A local folder, a built-in tiny model (built once into cache_dir), or a hub id."""
    if spec.source.startswith(BUILTIN_SOURCE):
        builtin = spec.source.removeprefix(BUILTIN_SOURCE)
        if builtin not in BUILDERS:
            raise ValueError(f"unknown built-in model {builtin!r}")
        return str(ensure_built(builtin, cache_dir / builtin))
    path = Path(spec.source).expanduser()
    candidates = [path] if path.is_absolute() else [models_path / path, path]
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate)
    if path.is_absolute() or spec.source.startswith("."):
        raise FileNotFoundError(f"model folder {path} does not exist")
    return spec.source  # a hub id: downloaded once into the hub cache


def compile_sizes(
    enabled: bool, configured: Sequence[int], batch_max_images: int
) -> tuple[int, ...]:
    """The batch sizes to compile for: as configured, or every size the batcher forms."""
    if not enabled:
        return ()
    sizes = configured or range(1, batch_max_images + 1)
    return tuple(sorted(set(sizes)))


@contextmanager
def condition_area(spec: ModelSpec) -> Iterator[None]:
    """Qwen's edit pipelines size their condition images to fixed areas inside `__call__`
    (module globals: `calculate_dimensions`'s 1024x1024 target for Edit and Edit inpaint,
    `VAE_IMAGE_SIZE` and `CONDITION_IMAGE_SIZE` for Edit-Plus); a model may declare another
    area (smaller is faster, e.g. on CPU). Calls are serial per process (the batcher runs
    one at a time), so swapping the module globals for the call's duration is safe."""
    if spec.condition_area is None or spec.family not in _CONDITION_GLOBALS:
        yield
        return
    import importlib

    area = spec.condition_area
    swapped: list[tuple[Any, str, Any]] = []
    for module_name, names in _CONDITION_GLOBALS[spec.family].items():
        module = importlib.import_module(f"diffusers.pipelines.qwenimage.{module_name}")
        for name in names:
            original = getattr(module, name)
            swapped.append((module, name, original))
            setattr(module, name, _smaller_area(name, original, area))
    try:
        yield
    finally:
        for module, name, original in swapped:
            setattr(module, name, original)


_CONDITION_GLOBALS: dict[str, dict[str, tuple[str, ...]]] = {
    "qwen-image-edit": {
        "pipeline_qwenimage_edit": ("calculate_dimensions",),
        "pipeline_qwenimage_edit_inpaint": ("calculate_dimensions",),
    },
    "qwen-image-edit-plus": {
        "pipeline_qwenimage_edit_plus": ("VAE_IMAGE_SIZE", "CONDITION_IMAGE_SIZE"),
    },
}


def _smaller_area(name: str, original: Any, area: int) -> Any:
    if name == "calculate_dimensions":
        return lambda _target, ratio: original(area, ratio)
    return min(original, area)  # an area constant: never larger than the pipeline's own


def resolve_device(setting: str, torch: Any) -> str:
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(setting: str, device: str, torch: Any) -> Any:
    if setting != "auto":
        return getattr(torch, setting)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32
