"""SDXL-architecture: plain per-request diffusers against easel's way (batched, compiled)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import _builders
import _configs
from _compile import MegaCache, configure_dynamo, graphs_compiled
from _measure import StepCallback, closed_loop, per_image_flops, time_call
from _report import Report, Row, loop_row

SDXL_PROMPT = "a lighthouse on a cliff at dusk, watercolour, detailed, soft light, variation {}"


def run_sdxl(args: argparse.Namespace, torch: Any, report: Report) -> None:
    configs = _configs.SDXL_TINY if args.tiny else _configs.SDXL_FULL
    dtype = getattr(torch, args.dtype)
    started = time.perf_counter()
    pipe = _builders.build_sdxl(configs, args.device, dtype)
    print(
        f"\nSDXL built in {time.perf_counter() - started:.1f} s: UNet "
        f"{_builders.count_parameters(pipe.unet) / 1e9:.3f} B parameters"
    )

    def call(indices: Sequence[int], steps: int = args.steps, easel: bool = True) -> Any:
        # easel's engine: batched prompts, one CPU generator per image, a step callback.
        # Plain: one prompt, one generator, no callback.
        seeds = [1000 + max(i, 0) for i in indices]
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        extra = {"callback_on_step_end": StepCallback()} if easel else {}
        with torch.inference_mode():
            return pipe(
                prompt=[SDXL_PROMPT.format(i) for i in indices],
                num_inference_steps=steps,
                guidance_scale=args.guidance,
                width=args.size,
                height=args.size,
                generator=generators if easel else generators[0],
                output_type="pil",
                **extra,
            ).images

    flops, per_step = per_image_flops(lambda steps: call([0], steps), args.steps)
    report.facts["sdxl_tflop_per_image"] = flops / 1e12
    print(
        f"SDXL {args.size}x{args.size}, {args.steps} steps, CFG {args.guidance}: "
        f"{flops / 1e12:.4g} TFLOP per image ({per_step / 1e12:.4g} per step)"
    )

    call([0], steps=2)  # warm-up (cuDNN/cuBLAS heuristics, allocator)
    times = time_call(lambda: call([0], easel=False), args.device, args.plain_requests, warmup=0)
    plain = 1 / (sum(times) / len(times))
    rows = [
        Row(
            name="plain diffusers, one request at a time, eager",
            batch="1",
            images_per_s=plain,
            seconds=1 / plain,
            tflops=flops * plain / 1e12,
            note=f"{len(times)} requests",
        )
    ]
    for batch in args.batch_sizes:
        call(list(range(batch)), steps=2)
        loop = closed_loop(
            call,
            clients=args.clients,
            max_batch=batch,
            requests=args.requests,
            window_s=args.window_ms / 1000,
        )
        name = f"easel's way, eager, {args.clients} clients"
        rows.append(loop_row(name, batch, loop, flops, f"mean batch {loop.mean_batch:.1f}"))
    if args.compile:
        rows += sdxl_compiled(args, torch, pipe, call, flops, report)
    report.table(
        f"SDXL-arch {args.size}x{args.size}, {args.steps} steps, CFG {args.guidance}, {args.dtype}",
        rows,
        baseline=plain,
    )
    best = max(r.images_per_s or 0 for r in rows[1:])
    report.facts["sdxl_best_ratio"] = best / plain


def sdxl_compiled(
    args: argparse.Namespace, torch: Any, pipe: Any, call: Any, flops: float, report: Report
) -> list[Row]:

    sizes = args.compile_batch_sizes
    configure_dynamo(torch, 2 * len(sizes) + 4)
    tag = f"sdxl-{args.size}-{args.dtype}-{args.device}-{'tiny' if args.tiny else 'full'}"
    cache = MegaCache(args.cache_dir, tag)
    loaded = cache.load(torch)
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    pipe.unet = torch.compile(pipe.unet, mode=args.compile_mode, fullgraph=False, dynamic=False)
    compile_s = {}
    for batch in sizes:  # start-up: one warm-up call per batch size compiles its graph
        started = time.perf_counter()
        call(list(range(batch)), steps=2)
        compile_s[batch] = time.perf_counter() - started
    cache.save(torch)
    warmups = ", ".join(f"batch {b}: {s:.0f} s" for b, s in compile_s.items())
    print(
        f"compiled the UNet ({args.compile_mode}, caches {'warm' if loaded else 'cold'}): {warmups}"
    )
    report.facts["sdxl_compile_seconds"] = compile_s
    rows = []
    for batch in sizes:
        before = graphs_compiled()
        loop = closed_loop(
            call,
            clients=args.clients,
            max_batch=batch,
            requests=args.requests,
            window_s=args.window_ms / 1000,
            pad_to=sizes,
        )
        during = graphs_compiled() - before
        note = f"mean batch {loop.mean_batch:.1f}; compiled in {compile_s[batch]:.0f} s at start"
        if loop.padded_calls:
            note += f"; {loop.padded_calls} padded calls"
        if during:
            note += f"; {during} GRAPHS COMPILED DURING REQUESTS"
        rows.append(loop_row(f"easel's way, compiled, {args.clients} clients", batch, loop,
                             flops, note))  # fmt: skip
    return rows
