"""Latent previews per family: packed sequences unpacked exactly as the pipelines pack
them, each family's own factors, and a neutral map for latents of another width."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline, QwenImagePipeline

from easel.generation.engines.diffusers.previews import FORMATS, latent_preview, unpack


@pytest.mark.parametrize("pipeline", [FluxPipeline, QwenImagePipeline])
def test_unpack_inverts_the_pipelines_packing(pipeline: type) -> None:
    torch.manual_seed(0)
    width, height, channels = 96, 64, 16
    latent = torch.randn(1, channels, height // 8, width // 8)
    packed = pipeline._pack_latents(latent, 1, channels, height // 8, width // 8)
    assert torch.equal(unpack(packed[0], width, height, 8), latent[0])


def test_each_family_has_its_own_factors() -> None:
    torch.manual_seed(1)
    latent = torch.randn(4, 8, 8)
    sd, sdxl = latent_preview(latent, "sd"), latent_preview(latent, "sdxl")
    assert sd is not None and sdxl is not None and sd.size == (8, 8)
    assert np.abs(np.asarray(sd, np.int16) - np.asarray(sdxl, np.int16)).mean() > 1
    packed = torch.randn((64 // 16) * (96 // 16), 64)
    flux, qwen = (
        latent_preview(packed, "flux", 96, 64),
        latent_preview(packed, "qwen-image", 96, 64),
    )
    assert flux is not None and qwen is not None and flux.size == (96 // 8, 64 // 8)
    assert np.abs(np.asarray(flux, np.int16) - np.asarray(qwen, np.int16)).mean() > 1
    assert set(FORMATS) >= {"sd", "sdxl", "flux", "qwen-image", "qwen-image-edit-plus"}


def test_other_widths_get_a_neutral_preview_and_bad_shapes_none() -> None:
    assert latent_preview(torch.randn(7, 8, 8), "sd") is not None
    assert latent_preview(torch.randn(5, 6, 1, 4, 4), "qwen-image") is None
    assert latent_preview(torch.randn(10, 64), "flux", 96, 64) is None  # not the call's size
    assert latent_preview(torch.randn(4, 1, 6, 6), "qwen-image").size == (6, 6)
