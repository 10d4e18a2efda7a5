"""`tiny-random`: real diffusers classes with tiny random weights, built locally.

It needs no network and no download, so the whole generation path (loading, batching,
progress, cancel, encoding) can be run and checked anywhere. It produces noise.
The folder is built once and cached; it then loads through the same code as any model.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("easel.generation.tiny")

TINY_SD = "tiny-random"
TINY_SDXL = "tiny-random-xl"
TINY_QWEN_EDIT = "tiny-random-qwen-edit"
_BUILT_MARKER = ".easel-built"


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte-to-unicode table: the alphabet of byte-level BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]  # fmt: skip
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def byte_level_symbols() -> list[str]:
    return list(byte_to_unicode().values())


def _clip_parts() -> tuple[Any, Any]:
    """A byte-level CLIP tokenizer (vocabulary made here) and a 32-wide text config."""
    from transformers import CLIPTextConfig, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for symbol in byte_level_symbols():
            vocab.setdefault(symbol + suffix, len(vocab))
    config = CLIPTextConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=len(vocab),
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=32,
    )
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77), config


def _unet_and_vae(**unet_options: Any) -> tuple[Any, Any]:
    """A two-block UNet and a VAE of four 8-channel blocks (the real scale factor 8)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=2,
        **unet_options,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        sample_size=32,
    )
    return unet, vae


def build_tiny_sd(folder: Path, seed: int = 0) -> None:
    """A Stable Diffusion pipeline: UNet, VAE, CLIP text encoder, byte-level tokenizer."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    tokenizer, text_config = _clip_parts()
    unet, vae = _unet_and_vae(cross_attention_dim=32)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)


def build_tiny_sdxl(folder: Path, seed: int = 0) -> None:
    """An SDXL pipeline: two text encoders (the second with projection) whose hidden states
    concatenate to the UNet's cross-attention width, and SDXL's size/time conditioning."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tokenizer, text_config = _clip_parts()
    time_embed_dim = 8
    unet, vae = _unet_and_vae(
        cross_attention_dim=2 * text_config.hidden_size,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        projection_class_embeddings_input_dim=6 * time_embed_dim + text_config.projection_dim,
    )
    StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config),
        text_encoder_2=CLIPTextModelWithProjection(text_config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(steps_offset=1),
    ).save_pretrained(folder)


QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def build_tiny_qwen_edit(folder: Path, seed: int = 0) -> None:
    """A Qwen-Image-Edit pipeline: MMDiT transformer, Qwen VAE, a Qwen2.5-VL text encoder
    with a byte-level tokenizer carrying the prompt template's special tokens, and a
    processor whose image side is small (the real one works near 1024x1024)."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2Tokenizer,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    vocab: dict[str, int] = {}
    for symbol in byte_level_symbols():
        vocab.setdefault(symbol, len(vocab))
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    special = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=4,
        z_dim=4,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": len(tokenizer),
            "rope_parameters": {
                "mrope_section": [1, 1, 2],
                "rope_type": "default",
                "rope_theta": 1000000.0,
            },
            **special,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        **special,
    )
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
    )
    pipeline = QwenImageEditPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=Qwen2_5_VLForConditionalGeneration(config),
        tokenizer=tokenizer,
        processor=processor,
    )
    pipeline.save_pretrained(folder)


BUILDERS = {
    TINY_SD: build_tiny_sd,
    TINY_SDXL: build_tiny_sdxl,
    TINY_QWEN_EDIT: build_tiny_qwen_edit,
}


def ensure_built(name: str, folder: Path) -> Path:
    """Build the named tiny model into `folder` unless a complete build is there."""
    if (folder / _BUILT_MARKER).exists():
        return folder
    log.info("building %s into %s (random weights: it produces noise)", name, folder)
    # Built aside and renamed into place, so processes sharing a data dir never load a
    # half-written folder; a process that loses the race keeps the winner's build.
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    BUILDERS[name](partial)
    (partial / _BUILT_MARKER).write_text(name)
    try:
        partial.rename(folder)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not (folder / _BUILT_MARKER).exists():
            raise
    return folder
