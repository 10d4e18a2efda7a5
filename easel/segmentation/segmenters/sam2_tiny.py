"""`tiny-random` for SAM 2: the real transformers classes with tiny random weights.

Built locally with no network, so the whole SAM 2 path (loading, the image encoder, the
prompt encoder and mask decoder, the cache) can be run and checked anywhere; its masks are
meaningless. The folder is written with `save_pretrained`, model and processor, and then
loads through exactly the code that loads a hub model or a downloaded folder.
`full_size=True` builds the default `Sam2Config()` instead (the Hiera-tiny architecture
of `facebook/sam2.1-hiera-tiny`, random weights): for latency figures without a download.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("easel.segmentation.sam2")

TINY_SAM2 = "tiny-random"  # the EASEL_SAM2_MODEL value that builds this model
_BUILT_MARKER = ".easel-built"  # written last: a folder without it is incomplete

# About 0.3 M parameters. The encoder fails with a global-attention block in this shape
# (a division by zero in the window padding), hence none.
_BACKBONE: dict[str, Any] = {
    "hidden_size": 16,
    "num_attention_heads": 1,
    "blocks_per_stage": [1, 1, 1, 1],
    "embed_dim_per_stage": [16, 32, 64, 128],
    "num_attention_heads_per_stage": [1, 1, 2, 2],
    "window_size_per_stage": [8, 4, 14, 7],
    "global_attention_blocks": [],
    "window_positional_embedding_background_size": [7, 7],
}
_VISION: dict[str, Any] = {"backbone_channel_list": [128, 64, 32, 16], "fpn_hidden_size": 32}
_PROMPT_ENCODER: dict[str, Any] = {"hidden_size": 32}
_MASK_DECODER: dict[str, Any] = {
    "hidden_size": 32,
    "mlp_dim": 64,
    "num_attention_heads": 2,
    "iou_head_hidden_dim": 32,
}


def tiny_config() -> Any:
    from transformers import Sam2Config
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    backbone = Sam2HieraDetConfig(**_BACKBONE)
    vision = Sam2VisionConfig(backbone_config=backbone.to_dict(), **_VISION)
    return Sam2Config(
        vision_config=vision.to_dict(),
        prompt_encoder_config=_PROMPT_ENCODER,
        mask_decoder_config=_MASK_DECODER,
    )


def build_tiny_sam2(folder: Path, *, full_size: bool = False, seed: int = 0) -> None:
    """Write a random SAM 2 model and its processor to `folder` (which must exist)."""
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    torch.manual_seed(seed)  # the same weights on every machine
    model = Sam2Model(Sam2Config() if full_size else tiny_config())
    model.save_pretrained(folder)
    Sam2Processor(image_processor=Sam2ImageProcessor()).save_pretrained(folder)


def ensure_tiny_sam2(folder: Path, *, full_size: bool = False) -> Path:
    """Build the tiny SAM 2 (or the full-size random one) into `folder` unless a complete
    build is there already; the folder, ready for `Sam2Segmenter(source=folder)`."""
    wanted = "full-size" if full_size else "tiny"
    marker = folder / _BUILT_MARKER
    if marker.is_file() and marker.read_text() == wanted:
        return folder
    if folder.exists() and not marker.is_file():
        # Builds land whole (renamed into place after the marker): this one is not ours.
        raise FileExistsError(f"{folder} exists and is not a built random SAM 2")
    log.info("building a %s random SAM 2 into %s (its masks are meaningless)", wanted, folder)
    # Built aside and renamed into place, so processes sharing a data dir never load a
    # half-written folder; a process that loses the race keeps the winner's build.
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    build_tiny_sam2(partial, full_size=full_size)
    (partial / _BUILT_MARKER).write_text(wanted)
    if folder.exists():
        shutil.rmtree(folder)  # the other size, asked for in the same folder: replaced
    try:
        partial.rename(folder)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not marker.is_file():
            raise
    return folder
