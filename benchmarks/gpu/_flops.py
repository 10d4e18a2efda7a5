"""Full-size FLOPs counted on the meta device: shapes only, no memory, no accelerator."""

from __future__ import annotations

import argparse
from typing import Any

import _configs
from _measure import count_flops

from easel.generation.tiny import building


def flops_only(args: argparse.Namespace, torch: Any) -> None:
    """Full-size FLOPs counted on the meta device: shapes only, no memory, no accelerator.
    The Qwen text encoder (data-dependent vision code) is left out here; device runs count
    it with the rest."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderKLQwenImage,
        QwenImageTransformer2DModel,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    dtype, sdxl, qwen = torch.bfloat16, _configs.SDXL_FULL, _configs.QWEN_FULL

    def meta(*shape: int) -> Any:
        return torch.empty(*shape, device="meta", dtype=dtype)

    tokens = torch.zeros(1, 77, dtype=torch.long, device="meta")
    with building("meta", dtype):
        unet = UNet2DConditionModel(**sdxl["unet"])
        vae = AutoencoderKL(**sdxl["vae"])
        clip_l = CLIPTextModel(CLIPTextConfig(**sdxl["text_encoder"]))
        clip_g = CLIPTextModelWithProjection(CLIPTextConfig(**sdxl["text_encoder_2"]))
        transformer = QwenImageTransformer2DModel(**qwen["transformer"])
        qwen_vae = AutoencoderKLQwenImage(**qwen["vae"])
    side = args.size // 8
    step = count_flops(
        lambda: unet(
            meta(2, 4, side, side),
            meta(2),
            encoder_hidden_states=meta(2, 77, 2048),
            added_cond_kwargs={"text_embeds": meta(2, 1280), "time_ids": meta(2, 6)},
        )
    )
    decode = count_flops(lambda: vae.decode(meta(1, 4, side, side)))
    text = count_flops(lambda: clip_l(tokens)) + count_flops(lambda: clip_g(tokens))
    total = step * args.steps + decode + text
    print(
        f"SDXL {args.size}x{args.size}, {args.steps} steps, CFG: UNet {step / 1e12:.2f} TFLOP "
        f"per step (batch 2: prompt + negative), VAE decode {decode / 1e12:.2f}, text "
        f"encoders {text / 1e12:.2f}: {total / 1e12:.1f} TFLOP per image"
    )
    packed, latent = args.qwen_size // 16, args.qwen_size // 8
    codec = count_flops(lambda: qwen_vae.encode(meta(1, 3, 1, args.qwen_size, args.qwen_size)))
    codec += count_flops(lambda: qwen_vae.decode(meta(1, 16, 1, latent, latent)))
    vision = round(args.qwen_size / 28) ** 2  # Qwen2.5-VL: 28x28 pixels per merged token
    for text_tokens in sorted({args.qwen_text_tokens, vision + 30}):
        forward = count_flops(
            lambda text_tokens=text_tokens: transformer(
                hidden_states=meta(1, 2 * packed * packed, 64),
                encoder_hidden_states=meta(1, text_tokens, 3584),
                timestep=meta(1),
                img_shapes=[[(1, packed, packed), (1, packed, packed)]],
                return_dict=False,
            )
        )
        edit = forward * 2 * args.qwen_steps + codec
        print(
            f"Qwen-Image-Edit {args.qwen_size}x{args.qwen_size}: transformer forward with "
            f"{2 * packed * packed} image + {text_tokens} text tokens {forward / 1e12:.1f} TFLOP;"
            f" x 2 passes x {args.qwen_steps} steps + VAE encode/decode {codec / 1e12:.1f} = "
            f"{edit / 1e15:.2f} PFLOP per edit (text encoder not counted)"
        )
