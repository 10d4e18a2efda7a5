"""Tiny LoRA adapters for the built-in tiny models, made with peft as a trainer makes them.

peft starts `lora_B` at zeros (an adapter that changes nothing until trained), so the
builder draws it at random from `seed`: the adapter then visibly changes the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from easel.generation.tiny import SD_CONFIGS, SDXL_CONFIGS

_UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
_TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def build_tiny_lora(path: Path, *, seed: int, family: str = "sd", scale: float = 0.5) -> Path:
    """A LoRA for `tiny-random` (family sd) or `tiny-random-xl` (sdxl, its second text
    encoder adapted too, as SDXL trainers do), written to `path` (a .safetensors file)."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from easel.generation.tiny import building, sd_pipeline, sdxl_pipeline

    generator = torch.Generator().manual_seed(seed)
    with building():
        pipe = sdxl_pipeline(SDXL_CONFIGS) if family == "sdxl" else sd_pipeline(SD_CONFIGS)
    layers = {"unet_lora_layers": _adapted(pipe.unet, _UNET_TARGETS, generator, scale)}
    if family == "sdxl":
        text = _adapted(pipe.text_encoder_2, _TEXT_TARGETS, generator, scale)
        layers["text_encoder_2_lora_layers"] = text
    saver = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    path.parent.mkdir(parents=True, exist_ok=True)
    saver.save_lora_weights(path.parent, weight_name=path.name, **layers)
    return path


def _adapted(module: Any, targets: list[str], generator: Any, scale: float) -> dict[str, Any]:
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    # peft's own injection: transformers' `add_adapter` asks for a newer peft than
    # diffusers does.
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=targets), module)
    for name, parameter in module.named_parameters():
        if "lora_B" in name:
            parameter.data = torch.randn(parameter.shape, generator=generator) * scale
    return convert_state_dict_to_diffusers(get_peft_model_state_dict(module))
