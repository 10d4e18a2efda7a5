"""SDXL and Qwen-Image-Edit pipelines built from configs in code, with random weights.

Speed does not depend on weight values, so nothing is downloaded: the real diffusers and
transformers classes are built at their published sizes (`FULL`) or tiny (`TINY`, for a CPU
smoke run of the same code), by the builders of easel's own tiny-random models
(easel.generation.tiny), straight on the target device in the target dtype, so a
20B-parameter transformer never exists in float32 anywhere. The configs are in
`_configs.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from _configs import QWEN_EDIT_TEMPLATE

from easel.generation.tiny import qwen_edit_pipeline, sdxl_pipeline


def count_parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def build_sdxl(configs: dict[str, dict[str, Any]], device: str, dtype: Any) -> Any:
    return _ready(sdxl_pipeline(configs, device=device, dtype=dtype), device, dtype)


def build_qwen_edit(
    configs: dict[str, dict[str, Any]], device: str, dtype: Any, prompts: Iterable[str]
) -> Any:
    # The tokenizer's merges spell the prompt template's and the prompts' words, so a
    # prompt takes about as many tokens as with Qwen's own vocabulary.
    texts = [QWEN_EDIT_TEMPLATE, *prompts, " "]
    pipe = qwen_edit_pipeline(configs, texts=texts, device=device, dtype=dtype)
    return _ready(pipe, device, dtype)


def _ready(pipe: Any, device: str, dtype: Any) -> Any:
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe
