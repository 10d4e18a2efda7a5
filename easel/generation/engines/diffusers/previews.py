"""Cheap previews of latents mid-generation: a linear map to RGB, no VAE decode.

Each family's latents get their own published latent-to-RGB approximation (the factors
ComfyUI's latent formats ship): SD 1.5's and SDXL's for their 4-channel latents, FLUX's
and Wan 2.1's (the VAE Qwen-Image uses) for 16 channels. FLUX and Qwen-Image pack their
latents as a sequence of 2x2 patches, (sequence, channels x 4), so those are unpacked to
(channels, height, width) first. Latents of another width (a tiny test model's, a new
VAE's) get a neutral map, so every family has a preview.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

# Row c: channel c's contribution to (R, G, B).
SD_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
FLUX_LATENT_RGB = (
    (-0.0346, 0.0244, 0.0681), (0.0034, 0.0210, 0.0687), (0.0275, -0.0668, -0.0433),
    (-0.0174, 0.0160, 0.0617), (0.0859, 0.0721, 0.0329), (0.0004, 0.0383, 0.0115),
    (0.0405, 0.0861, 0.0915), (-0.0236, -0.0185, -0.0259), (-0.0245, 0.0250, 0.1180),
    (0.1008, 0.0755, -0.0421), (-0.0515, 0.0201, 0.0011), (0.0428, -0.0012, -0.0036),
    (0.0817, 0.0765, 0.0749), (-0.1264, -0.0522, -0.1103), (-0.0280, -0.0881, -0.0499),
    (-0.1262, -0.0982, -0.0778),
)  # fmt: skip
WAN_LATENT_RGB = (
    (-0.1299, -0.1692, 0.2932), (0.0671, 0.0406, 0.0442), (0.3568, 0.2548, 0.1747),
    (0.0372, 0.2344, 0.1420), (0.0313, 0.0189, -0.0328), (0.0296, -0.0956, -0.0665),
    (-0.3477, -0.4059, -0.2925), (0.0166, 0.1902, 0.1975), (-0.0412, 0.0267, -0.1364),
    (-0.1293, 0.0740, 0.1636), (0.0680, 0.3019, 0.1128), (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699), (0.0060, -0.0633, 0.0005), (0.3477, 0.2275, 0.2950),
    (0.1984, 0.0913, 0.1861),
)  # fmt: skip


@dataclass(frozen=True)
class LatentFormat:
    factors: tuple[tuple[float, float, float], ...]
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    packed: bool = False  # a sequence of 2x2 patches (FLUX, Qwen-Image)
    vae_scale: int = 8  # pixels per latent cell


_QWEN = LatentFormat(WAN_LATENT_RGB, (-0.1835, -0.0868, -0.3360), packed=True)
FORMATS: dict[str, LatentFormat] = {
    "sd": LatentFormat(SD_LATENT_RGB),
    "sdxl": LatentFormat(SDXL_LATENT_RGB, (0.1084, -0.0175, -0.0011)),
    "flux": LatentFormat(FLUX_LATENT_RGB, (-0.0329, -0.0718, -0.0851), packed=True),
    "qwen-image": _QWEN,
    "qwen-image-edit": _QWEN,
    "qwen-image-edit-plus": _QWEN,
}


def unpack(latent: Any, width: int, height: int, vae_scale: int) -> Any | None:
    """One image's packed latent, (sequence, channels x 4), as (channels, h, w); None when
    its length does not fit the call's size."""
    rows, columns = height // (vae_scale * 2), width // (vae_scale * 2)
    sequence, packed_channels = latent.shape
    if sequence != rows * columns or packed_channels % 4:
        return None
    patches = latent.reshape(rows, columns, packed_channels // 4, 2, 2)
    return patches.permute(2, 0, 3, 1, 4).reshape(packed_channels // 4, rows * 2, columns * 2)


def latent_preview(
    latent: Any, family: str = "sd", width: int = 0, height: int = 0
) -> Image.Image | None:
    """`latent`: one image's latent tensor as its pipeline holds it mid-loop: (channels,
    height, width), a packed (sequence, channels x 4), or with a frame axis (Qwen's VAE
    is a video VAE: (channels, 1, height, width))."""
    import torch

    latent_format = FORMATS.get(family, FORMATS["sd"])
    latent = latent.detach().float()
    if latent_format.packed and latent.ndim == 2:
        latent = unpack(latent, width, height, latent_format.vae_scale)
        if latent is None:
            return None
    if latent.ndim == 4 and latent.shape[1] == 1:
        latent = latent[:, 0]
    if latent.ndim != 3:
        return None
    factors, bias = _factors(latent_format, latent.shape[0], torch)
    rgb = torch.einsum("chw,cr->hwr", latent, factors.to(latent.device)) + bias.to(latent.device)
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
    return Image.fromarray(pixels, "RGB")


def _factors(latent_format: LatentFormat, channels: int, torch: Any) -> tuple[Any, Any]:
    if channels == len(latent_format.factors):
        return torch.tensor(latent_format.factors), torch.tensor(latent_format.bias)
    # Unknown width: each third of the channels, averaged, drives one colour.
    neutral = torch.zeros(channels, 3)
    for channel in range(channels):
        neutral[channel, min(2, channel * 3 // channels)] = 3.0 / channels
    return neutral, torch.zeros(3)
