"""A LoRA file's model family, told from its safetensors header (names, shapes, metadata)
in the layouts trainers write: diffusers/peft, kohya, and their metadata keys."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from easel.generation.engines.diffusers.lora_files import NotALoraFile, lora_family


def header_file(
    path: Path, tensors: dict[str, list[int]], metadata: dict[str, str] | None = None
) -> Path:
    header: dict[str, Any] = {
        name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
        for name, shape in tensors.items()
    }
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


SD_PEFT = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight"
KOHYA_SD = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"
KOHYA_XL = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight"
FLUX = "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight"
KOHYA_FLUX = "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"
QWEN = "transformer.transformer_blocks.0.img_mlp.net.0.proj.lora_A.weight"


@pytest.mark.parametrize(
    ("tensors", "metadata", "family"),
    [
        ({SD_PEFT: [4, 768]}, None, "sd"),
        ({SD_PEFT: [4, 1024]}, None, "sd"),  # SD 2.x
        ({SD_PEFT: [4, 2048]}, None, "sdxl"),
        (
            {
                KOHYA_SD: [8, 768],
                "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [8, 768],
            },
            None,
            "sd",
        ),
        ({KOHYA_XL: [8, 2048]}, None, "sdxl"),
        (
            {
                SD_PEFT: [4, 32],
                "text_encoder_2.text_model.encoder.layers.0.q_proj.lora_A.weight": [4, 32],
            },
            None,
            "sdxl",
        ),
        ({FLUX: [4, 3072]}, None, "flux"),
        ({KOHYA_FLUX: [4, 3072]}, None, "flux"),
        ({QWEN: [4, 3072]}, None, "qwen-image"),
        # The trainer's metadata names the base model: it wins over the tensors.
        (
            {SD_PEFT: [4, 32]},
            {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"},
            "sdxl",
        ),
        ({SD_PEFT: [4, 32]}, {"ss_base_model_version": "sd_v1"}, "sd"),
        ({SD_PEFT: [4, 32]}, {"modelspec.architecture": "stable-diffusion-v3-medium/lora"}, "sd3"),
        ({"something.else.weight": [4, 4]}, {"format": "pt"}, None),
    ],
)
def test_the_family_is_read_from_the_header(
    tmp_path: Path,
    tensors: dict[str, list[int]],
    metadata: dict[str, str] | None,
    family: str | None,
) -> None:
    assert lora_family(header_file(tmp_path / "x.safetensors", tensors, metadata)) == family


def test_a_file_that_is_no_safetensors_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(NotALoraFile):
        lora_family(junk)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(NotALoraFile):
        lora_family(short)


def test_a_file_replaced_in_place_is_read_again(tmp_path: Path) -> None:
    path = header_file(tmp_path / "x.safetensors", {SD_PEFT: [4, 768]})
    assert lora_family(path) == "sd"
    header_file(path, {SD_PEFT: [4, 2048], "unet.extra.lora_A.weight": [4, 4]})
    assert lora_family(path) == "sdxl"
