"""Which model family a LoRA file was made for, read from its safetensors header alone.

A safetensors file starts with the JSON table of its tensors (names, shapes) and optional
string metadata, so this reads a few kilobytes, never the weights, and needs no torch.
Trainers name the base model in the metadata (Stability's `modelspec.architecture`,
kohya's `ss_base_model_version`); without it the tensor names and shapes tell: FLUX and
Qwen-Image have transformer blocks of their own, SDXL a second text encoder and a
2048-wide cross-attention, and any other UNet adapter is Stable Diffusion's.
"""

from __future__ import annotations

import json
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any

# Larger headers are not safetensors LoRAs (the format caps its header at 100 MB; a LoRA's
# table of a few thousand tensors is well under a megabyte).
MAX_HEADER_BYTES = 16 * 1024 * 1024

_SDXL_CROSS_ATTENTION = 2048  # SD 1.x: 768, SD 2.x: 1024
# (what the metadata says, the family): the first that matches; SD 3 is none of ours.
_METADATA_HINTS = (
    ("xl", "sdxl"),
    ("flux", "flux"),
    ("qwen", "qwen-image"),
    ("sd3", "sd3"),
    ("stable-diffusion-v3", "sd3"),
    ("stable-diffusion", "sd"),
    ("sd_v", "sd"),
)
_FLUX_BLOCKS = ("single_transformer_blocks", "double_blocks", "single_blocks")
_QWEN_BLOCKS = ("img_mlp", "txt_mlp", "img_mod")
_UNET_BLOCKS = ("down_blocks", "up_blocks", "mid_block", "input_blocks", "output_blocks")
_CROSS_ATTENTION_KEY = re.compile(r"attn2[._]to_k[._]lora(?:_A|\.down|_down)\.weight$")


class NotALoraFile(ValueError):
    """The file is no safetensors file (or its header cannot be read)."""


def lora_family(path: Path) -> str | None:
    """The family `path` was made for, or None when its header does not tell."""
    stat = path.stat()
    return _family_of(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _family_of(path: str, _mtime_ns: int, _size: int) -> str | None:
    # Keyed by modification time and size too: a file replaced in place is read again.
    header = read_header(Path(path))
    metadata = header.pop("__metadata__", None) or {}
    return _from_metadata(metadata) or _from_tensors(header)


def read_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise NotALoraFile(f"{path.name} is too short for a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise NotALoraFile(f"{path.name} has no safetensors header")
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise NotALoraFile(f"{path.name} has no safetensors header") from exc
    if not isinstance(header, dict):
        raise NotALoraFile(f"{path.name} has no safetensors header")
    return header


def _from_metadata(metadata: dict[str, Any]) -> str | None:
    named = " ".join(
        str(metadata.get(key, "")) for key in ("modelspec.architecture", "ss_base_model_version")
    ).lower()
    for hint, family in _METADATA_HINTS:
        if hint in named:
            return family
    return None


def _from_tensors(tensors: dict[str, Any]) -> str | None:
    names = list(tensors)
    if _any_part(names, _FLUX_BLOCKS):
        return "flux"
    if _any_part(names, _QWEN_BLOCKS):
        return "qwen-image"
    if any(name.startswith(("text_encoder_2.", "lora_te2_")) for name in names):
        return "sdxl"
    widths = {
        tensor["shape"][-1]
        for name, tensor in tensors.items()
        if _CROSS_ATTENTION_KEY.search(name) and isinstance(tensor, dict) and tensor.get("shape")
    }
    if _SDXL_CROSS_ATTENTION in widths:
        return "sdxl"
    if _any_part(names, _UNET_BLOCKS):
        return "sd"
    return None


def _any_part(names: list[str], parts: tuple[str, ...]) -> bool:
    return any(part in name for name in names for part in parts)
