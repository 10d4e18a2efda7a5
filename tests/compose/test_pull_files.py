"""Which files of a hub repo `easel models pull` takes, and which family it reads."""

from __future__ import annotations

import pytest

from easel.compose.pull_files import PullError, choose_files, detect_family, file_variant

INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.42.1",
    "unet": ["diffusers", "UNet2DConditionModel"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "safety_checker": [None, None],
}
LISTING = [
    ".gitattributes",
    "README.md",
    "model_index.json",
    "sd_xl_base_1.0.safetensors",  # a single-file checkpoint beside the folders
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors.index.json",
    "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
    "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
    "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
    "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors",
    "unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors",
    "unet/diffusion_pytorch_model.bin",
    "unet/diffusion_pytorch_model.fp16.bin",
    "unet/openvino_model.xml",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "text_encoder/pytorch_model.bin.index.json",
    "text_encoder/flax_model.msgpack",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "tokenizer/tokenizer_config.json",
    "scheduler/scheduler_config.json",
    "onnx/unet/model.onnx",
    "onnx/text_encoder/config.json",
    "safety_checker/model.safetensors",
]
SMALL = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "tokenizer/merges.txt",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json",
]


def test_plain_weights_and_every_config() -> None:
    chosen = choose_files(LISTING, INDEX, None)
    assert sorted(chosen) == sorted(
        [
            *SMALL,
            "text_encoder/model.safetensors",
            "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
            "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
            "unet/diffusion_pytorch_model.safetensors.index.json",
        ]
    )


def test_a_variant_where_there_is_one_else_the_plain_weights() -> None:
    chosen = choose_files(LISTING, INDEX, "fp16")
    assert sorted(chosen) == sorted(
        [
            *SMALL,
            "text_encoder/model.safetensors",  # no fp16 text encoder: the plain one
            "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors",
            "unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors",
            "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        ]
    )


def test_a_variant_nobody_has_and_weights_only_as_bin_are_refused() -> None:
    with pytest.raises(PullError, match="no component has bf16 weights"):
        choose_files(LISTING, INDEX, "bf16")
    only_bin = [f for f in LISTING if not f.startswith("text_encoder/model.")]
    with pytest.raises(PullError, match="text_encoder has no safetensors weights"):
        choose_files(only_bin, INDEX, None)
    only_fp16 = [f for f in LISTING if f != "text_encoder/model.safetensors"] + [
        "text_encoder/model.fp16.safetensors"
    ]
    only_fp16 = [f for f in only_fp16 if "fp16" in f or not f.startswith("unet/diffusion")]
    with pytest.raises(PullError, match="pass --variant fp16"):
        choose_files(only_fp16, INDEX, None)


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("model.safetensors", None),
        ("model.fp16.safetensors", "fp16"),
        ("model-00001-of-00003.fp16.safetensors", "fp16"),
        ("model.fp16-00001-of-00003.safetensors", "fp16"),
        ("model-00001-of-00003.safetensors", None),
        ("model.safetensors.index.json", None),
        ("model.safetensors.index.bf16.json", "bf16"),
    ],
)
def test_file_variant(name: str, variant: str | None) -> None:
    assert file_variant(name) == variant


def test_the_family_from_the_pipeline_class() -> None:
    assert detect_family(INDEX, "org/x") == "sdxl"
    assert detect_family({"_class_name": "QwenImageEditPlusPipeline"}, "org/x") == (
        "qwen-image-edit-plus"
    )
    with pytest.raises(PullError, match="pass --family"):
        detect_family({"_class_name": "KandinskyPipeline"}, "org/k")
