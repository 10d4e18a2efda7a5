"""Timing, FLOP counting and peak throughput. (Serving through easel's own batcher and
engine is in _serving.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s.
KNOWN_PEAKS_TFLOPS = {
    "H100 SXM": 989.4,
    "H100 80GB HBM3": 989.4,  # the SXM part's CUDA name
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H200": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10G": 70.0,
}


def known_peak(device_name: str) -> float | None:
    """The data-sheet bf16 peak for a CUDA device name, longest matching key first."""
    for key in sorted(KNOWN_PEAKS_TFLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return KNOWN_PEAKS_TFLOPS[key]
    return None


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measured_matmul_peak(device: str, dtype: Any, size: int = 8192, seconds: float = 2.0) -> float:
    """Achievable dense matmul TFLOP/s on this device: the ceiling kernels actually reach."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(10):
            a @ b
        synchronize(device)
        count += 10
    elapsed = time.perf_counter() - started
    return 2 * size**3 * count / elapsed / 1e12


# ---- FLOP counting -------------------------------------------------------------------------
def _flop_mode() -> Any:
    """FlopCounterMode that also counts the CPU flash-attention kernel (torch counts only
    the CUDA ones), so the smoke run's figures mean the same as on a GPU."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query: Any, key: Any, value: Any, *_: Any, **__: Any) -> int:
        return int(sdpa_flop_count(query, key, value))

    mapping = {}
    cpu_op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_op is not None:
        mapping[cpu_op] = cpu_sdpa
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count_flops(fn: Callable[[], Any]) -> int:
    """Matmul, convolution and attention FLOPs of running `fn` once (elementwise work is
    not counted: the usual convention for MFU)."""
    import torch

    with torch.inference_mode(), _flop_mode() as counter:
        fn()
    return int(counter.get_total_flops())


def per_image_flops(
    run_steps: Callable[[int], Any], steps: int, images: int = 1
) -> tuple[float, float]:
    """(FLOPs per image at `steps` steps, FLOPs per denoising step per image), counted over
    whole pipeline calls of 2 and 3 steps: everything the pipeline runs is included (text
    encoders, VAE encode/decode, both CFG passes). Not 1 step: some schedulers divide by
    zero there (flow matching with a terminal shift)."""
    two, three = count_flops(lambda: run_steps(2)), count_flops(lambda: run_steps(3))
    per_step = (three - two) / images
    return two / images + (steps - 2) * per_step, per_step


# ---- timing ------------------------------------------------------------------------------
def time_call(fn: Callable[[], Any], device: str, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return times
