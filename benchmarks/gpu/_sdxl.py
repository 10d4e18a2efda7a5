"""SDXL-architecture: plain per-request diffusers against easel's way (batched, compiled),
easel's way being its generation service itself (_serving.py)."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import _builders
import _configs
from _compile import MegaCache, graphs_compiled
from _measure import per_image_flops, time_call
from _report import Report, Row, loop_row
from _serving import MODEL, LoopResult, closed_loop, engine_for

from easel.core.generation_api import GenerationRequest
from easel.generation.settings import ModelSpec

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

    def plain(steps: int = args.steps) -> Any:
        # Plain diffusers: one prompt, one generator, no callback.
        with torch.inference_mode():
            return pipe(
                prompt=SDXL_PROMPT.format(0),
                num_inference_steps=steps,
                guidance_scale=args.guidance,
                width=args.size,
                height=args.size,
                generator=torch.Generator("cpu").manual_seed(1000),
                output_type="pil",
            ).images

    flops, per_step = per_image_flops(plain, args.steps)
    report.facts["sdxl_tflop_per_image"] = flops / 1e12
    print(
        f"SDXL {args.size}x{args.size}, {args.steps} steps, CFG {args.guidance}: "
        f"{flops / 1e12:.4g} TFLOP per image ({per_step / 1e12:.4g} per step)"
    )

    plain(steps=2)  # warm-up (cuDNN/cuBLAS heuristics, allocator)
    times = time_call(plain, args.device, args.plain_requests, warmup=0)
    plain_rate = 1 / (sum(times) / len(times))
    rows = [
        Row(
            name="plain diffusers, one request at a time, eager",
            batch="1",
            images_per_s=plain_rate,
            seconds=1 / plain_rate,
            tflops=flops * plain_rate / 1e12,
            note=f"{len(times)} requests",
        )
    ]
    spec = ModelSpec(
        source="builtin:benchmark",  # never read: the engine is handed `pipe`
        family="sdxl",
        dtype=args.dtype,
        default_steps=args.steps,
        default_guidance=args.guidance,
        default_size=args.size,
    )
    eager = engine_for(pipe, spec, device=args.device, dtype=args.dtype, cache_dir=args.cache_dir)
    for batch in args.batch_sizes:
        loop = serve(args, eager, batch, report)
        name = f"easel's way, eager, {args.clients} clients"
        rows.append(loop_row(name, batch, loop, flops, f"mean batch {loop.mean_batch:.1f}"))
    if args.compile:
        rows += sdxl_compiled(args, torch, pipe, spec, flops, report)
    report.table(
        f"SDXL-arch {args.size}x{args.size}, {args.steps} steps, CFG {args.guidance}, {args.dtype}",
        rows,
        baseline=plain_rate,
    )
    best = max(r.images_per_s or 0 for r in rows[1:])
    report.facts["sdxl_best_ratio"] = best / plain_rate


def request(args: argparse.Namespace, index: int, steps: int | None = None) -> GenerationRequest:
    """Request `index` of a client, as it would send it over HTTP."""
    return GenerationRequest(
        prompt=SDXL_PROMPT.format(index),
        model=MODEL,
        width=args.size,
        height=args.size,
        steps=steps or args.steps,
        guidance_scale=args.guidance,
        seed=1000 + index,
    )


def serve(args: argparse.Namespace, engine: Any, batch: int, report: Report) -> LoopResult:
    """`args.clients` clients of the generation service, up to `batch` images a call."""
    loop = closed_loop(
        engine,
        lambda index: request(args, index),
        clients=args.clients,
        requests=args.requests,
        max_batch=batch,
        window_s=args.window_ms / 1000,
        warmup=request(args, 0, steps=2),  # a full call of this size: heuristics, allocator
    )
    served = {"max_batch": batch, "images": loop.images, "calls": loop.calls}
    report.facts.setdefault("sdxl_served", []).append(served)
    return loop


def sdxl_compiled(
    args: argparse.Namespace, torch: Any, pipe: Any, spec: ModelSpec, flops: float, report: Report
) -> list[Row]:
    """The engine compiling the UNet as a server does (EASEL_GENERATION_COMPILE=true with
    EASEL_GENERATION_COMPILE_BATCH_SIZES = `--compile-batch-sizes`): at load, one warm-up
    call per batch size; a call of a size not warmed runs eager."""
    sizes = args.compile_batch_sizes
    tag = f"sdxl-{args.size}-{args.dtype}-{args.device}-{'tiny' if args.tiny else 'full'}"
    cache = MegaCache(args.cache_dir, tag)
    loaded = cache.load(torch)
    engine = engine_for(
        pipe, spec, device=args.device, dtype=args.dtype, cache_dir=args.cache_dir,
        compile_sizes=sizes,
    )  # fmt: skip
    started = time.perf_counter()
    asyncio.run(engine.ensure_loaded(MODEL))  # the engine's start-up compile
    compile_s = time.perf_counter() - started
    cache.save(torch)
    print(
        f"compiled the UNet as the engine does (caches {'warm' if loaded else 'cold'}), "
        f"batch sizes {sizes}: {compile_s:.0f} s"
    )
    report.facts["sdxl_compile_seconds"] = compile_s
    compiled = engine.loaded[MODEL].compiled
    rows = []
    for batch in args.batch_sizes:
        before, eager_before = graphs_compiled(), compiled.eager_calls
        loop = serve(args, engine, batch, report)
        during, eager = graphs_compiled() - before, compiled.eager_calls - eager_before
        note = f"mean batch {loop.mean_batch:.1f}; compiled at start ({compile_s:.0f} s)"
        if eager:
            note += f"; {eager} of {loop.calls} calls eager (a size not compiled)"
        if during:
            note += f"; {during} GRAPHS COMPILED DURING REQUESTS"
        rows.append(loop_row(f"easel's way, compiled, {args.clients} clients", batch, loop,
                             flops, note))  # fmt: skip
    return rows
