"""`tiny-random`: real diffusers classes with tiny random weights, built locally.

It needs no network and no download, so the whole generation path (loading, batching,
progress, cancel, encoding) can be run and checked anywhere. It produces noise.
The folder is built once and cached; it then loads through the same code as any model.

The pipeline builders take their components' constructor arguments (`*_CONFIGS` here:
the tiny sizes) and may build on another device and dtype: the GPU benchmark builds the
same classes at their published sizes through them (benchmarks/gpu/_configs.py).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("easel.generation.tiny")

TINY_SD = "tiny-random"
TINY_SDXL = "tiny-random-xl"
TINY_QWEN_EDIT = "tiny-random-qwen-edit"
TINY_QWEN_EDIT_PLUS = "tiny-random-qwen-edit-plus"
TINY_QWEN_IMAGE = "tiny-random-qwen-image"
TINY_CONTROLNET = "tiny-random-controlnet"  # fits tiny-random (SD)
TINY_CONTROLNET_UNION_XL = "tiny-random-controlnet-union-xl"  # fits tiny-random-xl
TINY_QWEN_CONTROLNET = "tiny-random-qwen-controlnet"  # fits tiny-random-qwen-image
_BUILT_MARKER = ".easel-built"

Configs = dict[str, dict[str, Any]]  # component -> its constructor's keyword arguments

# ---- sizes -------------------------------------------------------------------------------
_CLIP_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "projection_dim": 32,
}
# A two-block UNet and a VAE of four 8-channel blocks (the real scale factor 8).
_UNET = {
    "block_out_channels": (8, 16),
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": 2,
}
_VAE = {
    "block_out_channels": (8, 8, 8, 8),
    "norm_num_groups": 4,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "latent_channels": 4,
    "sample_size": 32,
}
SD_CONFIGS: Configs = {
    "unet": {**_UNET, "cross_attention_dim": 32},
    "vae": _VAE,
    "text_encoder": _CLIP_TEXT,
    "scheduler": {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "steps_offset": 1,
    },
}
# SDXL: the two text encoders' hidden states concatenate to the UNet's cross-attention
# width, and its size/time conditioning takes 6 time embeddings and the pooled projection.
SDXL_CONFIGS: Configs = {
    "unet": {
        **_UNET,
        "cross_attention_dim": 2 * 32,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 6 * 8 + 32,
    },
    "vae": _VAE,
    "text_encoder": _CLIP_TEXT,
    "text_encoder_2": _CLIP_TEXT,
    "scheduler": {"steps_offset": 1},
}
QWEN_EDIT_CONFIGS: Configs = {
    "transformer": {
        "patch_size": 2,
        "in_channels": 16,
        "out_channels": 4,
        "num_layers": 2,
        "attention_head_dim": 16,
        "num_attention_heads": 3,
        "joint_attention_dim": 16,
        "guidance_embeds": False,
        "axes_dims_rope": (8, 4, 4),
    },
    "vae": {
        "base_dim": 4,
        "z_dim": 4,
        "dim_mult": [1, 2, 2, 2],
        "num_res_blocks": 1,
        "temperal_downsample": [False, True, True],
        "latents_mean": [0.0] * 4,
        "latents_std": [1.0] * 4,
    },
    "text_encoder": {  # a Qwen2.5-VL: text and vision towers
        "text_config": {
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_parameters": {
                "mrope_section": [1, 1, 2],
                "rope_type": "default",
                "rope_theta": 1000000.0,
            },
        },
        "vision_config": {
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
    },
    # The image side small: the real processor works near 1024x1024.
    "processor": {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16},
    "scheduler": {},
}


# ---- tokenizers --------------------------------------------------------------------------
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


def clip_tokenizer() -> Any:
    """A byte-level CLIP tokenizer (vocabulary made here). SD pads every prompt to 77
    tokens, so the vocabulary does not change the work done."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for symbol in byte_to_unicode().values():
            vocab.setdefault(symbol + suffix, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


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
_WORDS = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+")


def qwen_tokenizer(texts: Iterable[str] = ()) -> Any:
    """A byte-level BPE tokenizer with Qwen's special tokens. Its merges spell the words of
    `texts`, so those take about as many tokens as with Qwen's own vocabulary (the text
    sequence length is part of the transformer's work); without texts, one token a byte."""
    from transformers import Qwen2Tokenizer

    table = byte_to_unicode()
    vocab = {symbol: index for index, symbol in enumerate(table.values())}
    merges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for text in texts:
        for word in _WORDS.findall(text):
            encoded = "".join(table[b] for b in word.encode())
            for end in range(1, len(encoded)):
                pair = (encoded[:end], encoded[end])
                if pair not in seen:
                    seen.add(pair)
                    merges.append(pair)
                    vocab.setdefault(encoded[: end + 1], len(vocab))
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    return tokenizer


# ---- pipelines ---------------------------------------------------------------------------
@contextmanager
def building(device: str = "cpu", dtype: Any = None) -> Iterator[None]:
    """New parameters are created on `device` in `dtype` (random init included), so a
    full-size model never exists in float32 on the CPU first."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or previous)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _clip_text_config(config: dict[str, Any], tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig

    # The special tokens' ids are the tokenizer's; so is the vocabulary's size, unless the
    # config keeps the real model's (a larger embedding, the same work per token).
    return CLIPTextConfig(
        **{"vocab_size": len(tokenizer), "max_position_embeddings": 77, **config},
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def _sd_components(configs: Configs, device: str, dtype: Any) -> dict[str, Any]:
    """UNet, VAE, CLIP text encoder and byte-level tokenizer, and where the configs have a
    second text encoder (SDXL), it with projection, sharing the tokenizer."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = clip_tokenizer()
    components: dict[str, Any] = {"tokenizer": tokenizer}
    with building(device, dtype):  # in this order: the seed gives the same weights
        components["unet"] = UNet2DConditionModel(**configs["unet"])
        components["vae"] = AutoencoderKL(**configs["vae"])
        text = _clip_text_config(configs["text_encoder"], tokenizer)
        components["text_encoder"] = CLIPTextModel(text)
        if "text_encoder_2" in configs:
            text_2 = _clip_text_config(configs["text_encoder_2"], tokenizer)
            components["text_encoder_2"] = CLIPTextModelWithProjection(text_2)
            components["tokenizer_2"] = tokenizer
    components["scheduler"] = EulerDiscreteScheduler(**configs["scheduler"])
    return components


def sd_pipeline(configs: Configs = SD_CONFIGS, *, device: str = "cpu", dtype: Any = None) -> Any:
    """A Stable Diffusion pipeline, without safety checker."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **_sd_components(configs, device, dtype),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl_pipeline(
    configs: Configs = SDXL_CONFIGS, *, device: str = "cpu", dtype: Any = None
) -> Any:
    """An SDXL pipeline: two text encoders whose hidden states concatenate to the UNet's
    cross-attention width, and the UNet's size/time conditioning; no watermark."""
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(
        **_sd_components(configs, device, dtype), add_watermarker=False
    )


def qwen_components(
    configs: Configs = QWEN_EDIT_CONFIGS,
    *,
    texts: Iterable[str] = (),
    device: str = "cpu",
    dtype: Any = None,
) -> dict[str, Any]:
    """Qwen-Image's components: MMDiT transformer, Qwen VAE, a Qwen2.5-VL text encoder
    with a byte-level tokenizer carrying the prompt template's special tokens (merges for
    the words of `texts`), and the processor the edit pipelines add (sized by
    `configs["processor"]`)."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = qwen_tokenizer(texts)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    special = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    towers = configs["text_encoder"]
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tokenizer), **towers["text_config"], **special},
        vision_config=towers["vision_config"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        **special,
    )
    with building(device, dtype):
        transformer = QwenImageTransformer2DModel(**configs["transformer"])
        vae = AutoencoderKLQwenImage(**configs["vae"])
        text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**configs["processor"]),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
    )
    return {
        "transformer": transformer,
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(**configs["scheduler"]),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "processor": processor,
    }


def qwen_edit_pipeline(
    configs: Configs = QWEN_EDIT_CONFIGS,
    *,
    texts: Iterable[str] = (),
    device: str = "cpu",
    dtype: Any = None,
    pipeline: str = "QwenImageEditPipeline",
) -> Any:
    """A Qwen-Image edit pipeline (`pipeline`: Edit, or Edit-Plus: several input images)."""
    import diffusers

    components = qwen_components(configs, texts=texts, device=device, dtype=dtype)
    return getattr(diffusers, pipeline)(**components)


def qwen_image_pipeline(
    configs: Configs = QWEN_EDIT_CONFIGS, *, device: str = "cpu", dtype: Any = None
) -> Any:
    """Qwen-Image for text-to-image (and, through from_pipe, image-to-image and inpaint):
    the edit pipeline's components but the processor."""
    from diffusers import QwenImagePipeline

    components = qwen_components(configs, device=device, dtype=dtype)
    del components["processor"]
    return QwenImagePipeline(**components)


# ---- the built-in models -----------------------------------------------------------------
def build_tiny_sd(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    sd_pipeline().save_pretrained(folder)


def build_tiny_sdxl(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    sdxl_pipeline().save_pretrained(folder)


def build_tiny_qwen_edit(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    qwen_edit_pipeline().save_pretrained(folder)


def build_tiny_qwen_edit_plus(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    qwen_edit_pipeline(pipeline="QwenImageEditPlusPipeline").save_pretrained(folder)


def build_tiny_qwen_image(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    qwen_image_pipeline().save_pretrained(folder)


# ---- ControlNets -------------------------------------------------------------------------
def tiny_controlnet(configs: Configs = SD_CONFIGS, *, union: bool = False) -> Any:
    """A ControlNet made from the tiny UNet of `configs` (`union`: a ControlNet-Union), its
    zero-initialised output convolutions randomised: a fresh ControlNet adds exactly
    nothing to the UNet, so a test could not see it work."""
    import torch
    from diffusers import ControlNetModel, ControlNetUnionModel, UNet2DConditionModel

    # Seeded as the pipeline builders seed: the UNet's weights are the tiny model's.
    unet = UNet2DConditionModel(**configs["unet"])
    kind = ControlNetUnionModel if union else ControlNetModel
    controlnet = kind.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 16, 16))
    if union:  # from_unet keeps the full-size (320) width of the control-type transformer
        narrow = {"num_trans_channel": 8, "num_trans_head": 2, "num_proj_channel": 8}
        config = {k: v for k, v in controlnet.config.items() if k != "_use_default_values"}
        controlnet = kind.from_config({**config, **narrow})  # (that key would undo narrow)
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.reset_parameters()  # the default (random) init that from_unet zeroed
        # The condition's own path, He-initialised: with PyTorch's default init, the
        # image's signal fades through its eight small convolutions, and every condition
        # image would give nearly the same output.
        for module in controlnet.controlnet_cond_embedding.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                torch.nn.init.zeros_(module.bias)
        # About as large as the latents it is added to: each condition image visibly
        # steers the output.
        controlnet.controlnet_cond_embedding.conv_out.weight.mul_(4)
    return controlnet


def build_tiny_controlnet(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    tiny_controlnet().save_pretrained(folder)


def build_tiny_controlnet_union_xl(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    tiny_controlnet(SDXL_CONFIGS, union=True).save_pretrained(folder)


def tiny_qwen_controlnet(configs: Configs = QWEN_EDIT_CONFIGS) -> Any:
    """A Qwen-Image ControlNet made from the tiny transformer of `configs`, one block deep,
    its zero-initialised input and output projections randomised (as `tiny_controlnet`)."""
    import torch
    from diffusers import QwenImageControlNetModel, QwenImageTransformer2DModel

    transformer = QwenImageTransformer2DModel(**configs["transformer"])
    shape = {k: configs["transformer"][k] for k in ("attention_head_dim", "num_attention_heads")}
    controlnet = QwenImageControlNetModel.from_transformer(transformer, num_layers=1, **shape)
    with torch.no_grad():
        for linear in [*controlnet.controlnet_blocks, controlnet.controlnet_x_embedder]:
            linear.reset_parameters()
    return controlnet


def build_tiny_qwen_controlnet(folder: Path, seed: int = 0) -> None:
    _seeded(seed)
    tiny_qwen_controlnet().save_pretrained(folder)


def _seeded(seed: int) -> None:
    import torch

    torch.manual_seed(seed)  # the same weights on every machine


BUILDERS = {
    TINY_SD: build_tiny_sd,
    TINY_SDXL: build_tiny_sdxl,
    TINY_QWEN_EDIT: build_tiny_qwen_edit,
    TINY_QWEN_EDIT_PLUS: build_tiny_qwen_edit_plus,
    TINY_QWEN_IMAGE: build_tiny_qwen_image,
    TINY_CONTROLNET: build_tiny_controlnet,
    TINY_CONTROLNET_UNION_XL: build_tiny_controlnet_union_xl,
    TINY_QWEN_CONTROLNET: build_tiny_qwen_controlnet,
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
