"""SDXL and Qwen-Image-Edit pipelines built from configs in code, with random weights.

Speed does not depend on weight values, so nothing is downloaded: the real diffusers and
transformers classes are built at their published sizes (`FULL`) or tiny (`TINY`, for a CPU
smoke run of the same code). Models are built straight on the target device in the target
dtype, so a 20B-parameter transformer never exists in float32 anywhere. The configs are in
`_configs.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from _configs import QWEN_EDIT_TEMPLATE, QWEN_SCHEDULER, SDXL_SCHEDULER

from easel.generation.tiny import QWEN_SPECIAL_TOKENS, byte_to_unicode


# ---- building ----------------------------------------------------------------------------
@contextmanager
def building(device: str, dtype: Any) -> Iterator[None]:
    """New parameters are created on `device` in `dtype` (random init included)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def count_parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def clip_tokenizer() -> Any:
    """A byte-level CLIP tokenizer; SDXL pads every prompt to 77 tokens, so the vocabulary
    does not change the work done."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for symbol in byte_to_unicode().values():
            vocab.setdefault(symbol + suffix, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


_WORDS = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+")


def qwen_tokenizer(texts: Iterable[str]) -> Any:
    """A byte-level BPE tokenizer whose merges spell the words of `texts` (the prompt
    template and the prompts), so prompts take about as many tokens as with Qwen's own
    vocabulary (the text sequence length is part of the transformer's work)."""
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


def build_sdxl(configs: dict[str, dict[str, Any]], device: str, dtype: Any) -> Any:
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = clip_tokenizer()
    special = {"vocab_size": 49408, "max_position_embeddings": 77}
    special |= {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    with building(device, dtype):
        unet = UNet2DConditionModel(**configs["unet"])
        vae = AutoencoderKL(**configs["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"], **special))
        text_encoder_2 = CLIPTextModelWithProjection(
            CLIPTextConfig(**configs["text_encoder_2"], **special)
        )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
        add_watermarker=False,
    )
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_qwen_edit(
    configs: dict[str, dict[str, Any]], device: str, dtype: Any, prompts: Iterable[str]
) -> Any:
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = qwen_tokenizer([QWEN_EDIT_TEMPLATE, *prompts, " "])
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    special = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    text_config = dict(configs["text_encoder"]["text_config"])
    text_config.setdefault("vocab_size", len(tokenizer))
    config = Qwen2_5_VLConfig(
        text_config={**text_config, **special},
        vision_config=configs["text_encoder"]["vision_config"],
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
    pipe = QwenImageEditPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_SCHEDULER),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=processor,
    )
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe
