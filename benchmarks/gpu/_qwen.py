"""Qwen-Image-Edit-architecture: the transformer forward and the whole edit, with MFU."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import _builders
import _configs
from _compile import MegaCache, configure_dynamo, graphs_compiled
from _measure import count_flops, per_image_flops, time_call
from _report import Report, Row

from easel.core.generation_api import Mode
from easel.generation.engines.base import CallKey, EngineCall, EngineItem
from easel.generation.engines.diffusers.running import StepCallback

QWEN_PROMPT = "make the sky a deep purple and add a small red boat near the shore"


def qwen_forward_inputs(
    torch: Any, pipe: Any, args: argparse.Namespace, text: int
) -> dict[str, Any]:
    """One transformer call as the edit pipeline makes it: target and condition latents
    packed 2x2 (2 x (size/16)^2 image tokens) and `text` prompt tokens, batch 1."""
    config = pipe.transformer.config
    side = args.qwen_size // (pipe.vae_scale_factor * 2)
    dtype, device = getattr(torch, args.dtype), args.device
    joint = config.joint_attention_dim
    return {
        "hidden_states": torch.randn(
            1, 2 * side * side, config.in_channels, dtype=dtype, device=device
        ),
        "encoder_hidden_states": torch.randn(1, text, joint, dtype=dtype, device=device),
        "encoder_hidden_states_mask": None,
        "timestep": torch.full((1,), 0.5, dtype=dtype, device=device),
        "img_shapes": [[(1, side, side), (1, side, side)]],
        "return_dict": False,
    }


def run_qwen(args: argparse.Namespace, torch: Any, report: Report) -> None:
    import numpy as np
    from PIL import Image

    configs = _configs.QWEN_TINY if args.tiny else _configs.QWEN_FULL
    started = time.perf_counter()
    pipe = _builders.build_qwen_edit(
        configs, args.device, getattr(torch, args.dtype), [QWEN_PROMPT]
    )
    print(
        f"\nQwen-Image-Edit built in {time.perf_counter() - started:.1f} s: transformer "
        f"{_builders.count_parameters(pipe.transformer) / 1e9:.2f} B, text encoder "
        f"{_builders.count_parameters(pipe.text_encoder) / 1e9:.2f} B parameters"
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.qwen_size, args.qwen_size, 3), dtype=np.uint8)
    condition = Image.fromarray(pixels)
    seen_text: set[tuple[int, int]] = set()
    hook = pipe.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen_text.add(
            (kw["hidden_states"].shape[1], kw["encoder_hidden_states"].shape[1])
        ),
        with_kwargs=True,
    )

    def edit(steps: int = args.qwen_steps) -> Any:
        # The engine's own step callback (progress, cancel), for the call easel would make.
        call = EngineCall(
            key=CallKey("bench", Mode.EDIT, args.qwen_size, args.qwen_size, steps, args.qwen_cfg),
            items=[EngineItem(prompt=QWEN_PROMPT, negative_prompt=" ", seed=7, num_images=1)],
        )
        callback = StepCallback(call, lambda _items: None, lambda: False, "qwen-image-edit")
        with torch.inference_mode(), condition_area(args.qwen_size):
            return pipe(
                image=[condition],
                prompt=[QWEN_PROMPT],
                negative_prompt=[" "],  # easel's default: Qwen runs true CFG only with one
                true_cfg_scale=args.qwen_cfg,
                num_inference_steps=steps,
                width=args.qwen_size,
                height=args.qwen_size,
                generator=[torch.Generator("cpu").manual_seed(7)],
                output_type="pil",
                callback_on_step_end=callback,
            ).images

    flops, per_step = per_image_flops(edit, args.qwen_steps)
    hook.remove()
    shapes = sorted(seen_text)
    print(
        f"Qwen-Image-Edit {args.qwen_size}x{args.qwen_size}, {args.qwen_steps} steps, true "
        f"CFG {args.qwen_cfg}: {flops / 1e12:.4g} TFLOP per image ({per_step / 1e12:.4g} "
        f"per step); transformer (image, text) tokens per pass: {shapes}"
    )
    report.facts.update(qwen_tflop_per_image=flops / 1e12, qwen_token_shapes=shapes)

    text = args.qwen_text_tokens
    inputs = qwen_forward_inputs(torch, pipe, args, text)
    image_tokens = inputs["hidden_states"].shape[1]
    forward_flops = count_flops(lambda: pipe.transformer(**inputs))

    def forward() -> Any:
        with torch.inference_mode():
            return pipe.transformer(**inputs)

    def measure(label: str) -> list[Row]:
        times = time_call(forward, args.device, repeats=5 if not args.tiny else 2, warmup=2)
        per_forward = sorted(times)[len(times) // 2]
        edit(steps=2)  # warm-up at the real shapes
        edit_times = time_call(edit, args.device, repeats=args.qwen_runs, warmup=0)
        per_image = sum(edit_times) / len(edit_times)
        return [
            Row(
                name=f"transformer forward, {label}",
                batch="1",
                seconds=per_forward,
                tflops=forward_flops / per_forward / 1e12,
                note=f"{image_tokens} image + {text} text tokens; median of {len(times)}",
            ),
            Row(
                name=f"edit end to end, {label}",
                batch="1",
                images_per_s=1 / per_image,
                seconds=per_image,
                tflops=flops / per_image / 1e12,
                note=f"{args.qwen_steps} steps x 2 passes; {len(edit_times)} edits",
            ),
        ]

    rows = measure("eager")
    if args.compile:
        configure_dynamo(torch, 16)
        tag = f"qwen-{args.qwen_size}-{args.dtype}-{args.device}-{'tiny' if args.tiny else 'full'}"
        cache = MegaCache(args.cache_dir, tag)
        loaded = cache.load(torch)
        if args.qwen_compile_scope == "regional":
            pipe.transformer.compile_repeated_blocks(mode=args.compile_mode, dynamic=False)
        else:
            pipe.transformer.compile(mode=args.compile_mode, dynamic=False)
        started = time.perf_counter()
        forward()
        edit(steps=2)  # the prompt's and the negative's text lengths
        compile_s = time.perf_counter() - started
        cache.save(torch)
        print(
            f"compiled the transformer ({args.qwen_compile_scope}, {args.compile_mode}, caches "
            f"{'warm' if loaded else 'cold'}) in {compile_s:.0f} s"
        )
        report.facts["qwen_compile_seconds"] = compile_s
        before = graphs_compiled()
        rows += measure(f"compiled ({args.qwen_compile_scope})")
        if graphs_compiled() != before:
            rows[-1].note += f"; {graphs_compiled() - before} GRAPHS COMPILED WHILE MEASURING"
    report.table(
        f"Qwen-Image-Edit-arch {args.qwen_size}x{args.qwen_size}, {args.qwen_steps} "
        f"steps, true CFG {args.qwen_cfg}, {args.dtype}",
        rows,
    )
    end_to_end = [r.tflops for r in rows if r.name.startswith("edit") and r.tflops]
    report.facts["qwen_best_tflops"] = max(end_to_end) if end_to_end else None


@contextmanager
def condition_area(side: int) -> Iterator[None]:
    """The edit pipeline sizes its condition image to a 1024x1024 area whatever the output
    size (easel's engine has the same hook, `condition_area`): make it side x side."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit as module

    original = module.calculate_dimensions
    module.calculate_dimensions = lambda _target, ratio: original(side * side, ratio)
    try:
        yield
    finally:
        module.calculate_dimensions = original
