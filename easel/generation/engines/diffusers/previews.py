"""Cheap previews of latents mid-generation: a linear map to RGB, no VAE decode.

Factors are Stable Diffusion's published latent-to-RGB approximation; they apply to any
4-channel SD-family latent. Other latent layouts (packed FLUX/Qwen sequences) get none.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

SD_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)


def latent_preview(latent: Any) -> Image.Image | None:
    """`latent`: one image's latent tensor, (channels, height, width)."""
    import torch

    if latent.ndim != 3 or latent.shape[0] != len(SD_LATENT_RGB):
        return None
    factors = torch.tensor(SD_LATENT_RGB, dtype=torch.float32, device=latent.device)
    rgb = torch.einsum("chw,cr->hwr", latent.float(), factors)
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
    return Image.fromarray(pixels, "RGB")
