"""Generation on a GPU: plain per-request diffusers against easel's way, with MFU.

Full-size SDXL and Qwen-Image-Edit architectures are built from configs in code with random
weights (speed does not depend on weight values; nothing is downloaded), and measured in one
run:

SDXL (1024x1024, 30 steps, CFG 5 by default)
  (a) plain diffusers: one request at a time, bf16, eager;
  (b) easel's way: M concurrent clients (8) of easel's own generation service (its
      GenerationService, Batcher and DiffusersEngine, handed the pipeline built here), up to
      B images a call (4, 8), bf16, SDPA; eager, then with the UNet compiled by the engine
      as a server compiles it (at load, for --compile-batch-sizes; calls of other sizes
      run eager), with the inductor caches on disk, never on a request.
Qwen-Image-Edit (1024x1024 output and condition image, 50 steps, true CFG 4: two transformer
  passes per step, prompt and negative)
  the transformer forward at batch 1 (8192 image tokens + N text tokens) and the whole edit
  end to end, eager and compiled.

Each row prints images/s (or seconds), the ratio to plain, and MFU: counted FLOPs (matmul,
convolution and attention, torch.utils.flop_counter over whole pipeline calls) per second
over the data-sheet dense bf16 peak, and over the matmul peak measured on this device.

    python benchmarks/gpu/generation_gpu.py --model sdxl          # est. ~8 min on an H100
    python benchmarks/gpu/generation_gpu.py --model qwen-edit     # est. ~6 min, ~60 GB
    python benchmarks/gpu/generation_gpu.py --device cpu --tiny   # smoke run, CPU, < 1 min
    python benchmarks/gpu/generation_gpu.py --flops-only          # full-size FLOPs, no device
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# None of these imports torch: --help stays instant, and the compile caches are configured
# before torch is first imported.
from _compile import configure_compile_caches, release  # noqa: E402
from _flops import flops_only  # noqa: E402
from _measure import known_peak, measured_matmul_peak  # noqa: E402
from _qwen import run_qwen  # noqa: E402
from _report import Report  # noqa: E402
from _sdxl import run_sdxl  # noqa: E402

TARGET_SDXL_RATIO = 2.5
TARGET_QWEN_MFU = 0.60


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    add = parser.add_argument
    add("--model", choices=["sdxl", "qwen-edit", "all"], default="all")
    add("--device", default="cuda", help="cuda (default) or cpu (with --tiny)")
    add("--dtype", choices=["bfloat16", "float16", "float32"], help="bfloat16 (cpu: float32)")
    add("--tiny", action="store_true", help="tiny configs and sizes: a smoke run of the code")
    add("--flops-only", action="store_true", help="count full-size FLOPs on the meta device")
    add("--clients", type=int, default=8, help="concurrent clients, easel's way (8)")
    add("--batch-sizes", default="4,8", help="max images per call, easel's way (4,8)")
    add("--window-ms", type=float, default=25.0, help="batch window, as EASEL_BATCH_WINDOW_MS")
    add("--size", type=int, help="SDXL width = height (1024; tiny 64)")
    add("--steps", type=int, help="SDXL steps (30; tiny 3)")
    add("--guidance", type=float, default=5.0, help="SDXL CFG scale (5)")
    add("--plain-requests", type=int, help="timed one-at-a-time requests (4; tiny 2)")
    add("--requests", type=int, help="requests per batched row (2 x clients)")
    add(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="the torch.compile rows (default: on; off with --tiny, where compiling on a "
        "CPU takes minutes cold)",
    )
    add("--compile-mode", default="default", help="torch.compile mode (default)")
    add(
        "--compile-batch-sizes",
        help="SDXL batch sizes to compile (the --batch-sizes); add 1 "
        "for a compiled one-at-a-time row",
    )
    add(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "easel-bench" / "inductor",
        help="TORCHINDUCTOR_CACHE_DIR and the mega-cache file (%(default)s)",
    )
    add("--qwen-size", type=int, help="Qwen output and condition side (1024; tiny 64)")
    add("--qwen-steps", type=int, help="Qwen steps (50; tiny 2)")
    add("--qwen-cfg", type=float, default=4.0, help="Qwen true_cfg_scale (4)")
    add("--qwen-text-tokens", type=int, default=256, help="text tokens, forward timing (256)")
    add("--qwen-runs", type=int, default=1, help="timed end-to-end Qwen edits per row (1)")
    add(
        "--qwen-compile-scope",
        choices=["regional", "full"],
        default="regional",
        help="regional: compile the repeated transformer block once (diffusers' "
        "compile_repeated_blocks); full: the whole transformer",
    )
    add("--peak-tflops", type=float, help="bf16 dense peak (default: from the device name)")
    add("--no-measure-peak", dest="measure_peak", action="store_false")
    add("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    tiny = args.tiny
    if args.compile is None:
        args.compile = not tiny
    args.dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    args.size = args.size or (64 if tiny else 1024)
    args.steps = args.steps or (3 if tiny else 30)
    args.qwen_size = args.qwen_size or (64 if tiny else 1024)
    args.qwen_steps = args.qwen_steps or (3 if tiny else 50)
    args.plain_requests = args.plain_requests or (2 if tiny else 4)
    args.requests = args.requests or 2 * args.clients
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    compile_sizes = args.compile_batch_sizes or ",".join(map(str, args.batch_sizes))
    args.compile_batch_sizes = sorted({int(x) for x in compile_sizes.split(",")})
    if min(args.steps, args.qwen_steps) < 2:
        parser.error("at least 2 steps (FLOPs are counted per step from 2- and 3-step calls)")
    if tiny:
        args.qwen_text_tokens = min(args.qwen_text_tokens, 32)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_compile_caches(args.cache_dir)
    import diffusers
    import torch
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    if args.flops_only:
        flops_only(args, torch)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run on a GPU, or try --device cpu --tiny", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    name = name or args.device
    peak = args.peak_tflops
    if peak is None and args.device.startswith("cuda"):
        peak = known_peak(name)
    measured, matmul = None, 1024 if args.tiny else 8192
    if args.measure_peak:
        measured = measured_matmul_peak(args.device, getattr(torch, args.dtype), size=matmul)
    print(
        f"device: {name or args.device}; torch {torch.__version__}, diffusers "
        f"{diffusers.__version__}; {args.dtype}; peak {peak or '?'} TFLOP/s (data sheet), "
        f"{measured or 0:.4g} TFLOP/s measured ({matmul}^3 matmuls)"
        f"{'; TINY configs: a smoke run, not a measurement' if args.tiny else ''}"
    )
    report = Report(peak, measured)
    report.facts.update(
        device=name, peak_tflops=peak, measured_peak_tflops=measured, tiny=args.tiny
    )
    if args.model in ("sdxl", "all"):
        run_sdxl(args, torch, report)
        release(torch)
    if args.model in ("qwen-edit", "all"):
        run_qwen(args, torch, report)
    print_targets(args, report)
    if args.json:
        args.json.write_text(
            json.dumps({"facts": report.facts, "tables": report.sections}, indent=2, default=str)
        )
    return 0


def print_targets(args: argparse.Namespace, report: Report) -> None:
    facts = report.facts
    print("\ntargets" + (" (tiny smoke run: not meaningful)" if args.tiny else ""))
    if "sdxl_best_ratio" in facts:
        ratio = facts["sdxl_best_ratio"]
        met = "met" if ratio >= TARGET_SDXL_RATIO else "NOT met"
        print(
            f"  SDXL-arch, {args.clients} clients: >= {TARGET_SDXL_RATIO}x plain images/s: "
            f"{ratio:.2f}x, {met}"
        )
    if facts.get("qwen_best_tflops"):
        best = facts["qwen_best_tflops"]
        for label, peak in (("data-sheet", report.peak), ("measured", report.measured_peak)):
            if peak:
                met = "met" if best / peak >= TARGET_QWEN_MFU else "NOT met"
                print(
                    f"  Qwen-Image-Edit-arch end to end: MFU >= {TARGET_QWEN_MFU:.0%} of the "
                    f"{label} peak: {best / peak:.1%}, {met}"
                )


if __name__ == "__main__":
    sys.exit(main())
