"""Timing, FLOP counting, peak throughput and a closed-loop batching simulation.

The batching loop mirrors easel's `Batcher` (easel/generation/batching.py): M clients each
send a request and wait for it; one dispatcher takes the oldest request, waits up to a short
window for compatible companions, and runs up to `max_batch` of them as one pipeline call.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


class StepCallback:
    """What easel's engine does at every step (easel/generation/engines/diffusers/running.py):
    count the step, report progress, stop the loop once every request is cancelled."""

    def __init__(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        self.steps = 0
        self.cancelled = cancelled

    def __call__(self, pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> Any:
        self.steps = step + 1
        if self.cancelled():
            pipe._interrupt = True
        return tensors


# ---- closed-loop batching ----------------------------------------------------------------
@dataclass
class LoopResult:
    images: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    padded_calls: int = 0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    @property
    def p50_s(self) -> float:
        return statistics.median(self.latencies_s) if self.latencies_s else float("nan")

    @property
    def mean_batch(self) -> float:
        return statistics.fmean(self.batch_sizes) if self.batch_sizes else float("nan")


@dataclass
class _Request:
    index: int
    sent: float
    done: threading.Event = field(default_factory=threading.Event)


def closed_loop(
    run_batch: Callable[[Sequence[int]], Any],
    *,
    clients: int,
    max_batch: int,
    requests: int,
    window_s: float = 0.025,
    pad_to: Sequence[int] = (),
) -> LoopResult:
    """`clients` threads each send a request and wait for its images, until `requests`
    have been answered. `run_batch(indices)` runs one pipeline call for those requests.
    With `pad_to` (the batch sizes compiled at start-up), a partial batch is padded with
    dummy requests up to the next compiled size, so no call ever compiles."""
    inbox: queue.Queue[_Request] = queue.Queue()
    result = LoopResult()
    budget = threading.Semaphore(requests)
    lock = threading.Lock()
    issued = [0]

    def client() -> None:
        while budget.acquire(blocking=False):
            with lock:
                index = issued[0]
                issued[0] += 1
            request = _Request(index, time.perf_counter())
            inbox.put(request)
            request.done.wait()
            with lock:
                result.latencies_s.append(time.perf_counter() - request.sent)

    def take_batch() -> list[_Request]:
        batch = [inbox.get()]
        deadline = time.perf_counter() + window_s
        while len(batch) < max_batch:
            remaining = deadline - time.perf_counter()
            try:
                batch.append(
                    inbox.get(timeout=max(remaining, 0)) if remaining > 0 else inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    answered = 0
    while answered < requests:
        batch = take_batch()
        indices = [r.index for r in batch]
        sizes = sorted(s for s in pad_to if s >= len(indices))
        if pad_to and sizes and sizes[0] > len(indices):
            indices += [-1] * (sizes[0] - len(indices))  # dummies: computed, thrown away
            result.padded_calls += 1
        run_batch(indices)
        for request in batch:
            request.done.set()
        answered += len(batch)
        result.batch_sizes.append(len(batch))
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    result.images = answered
    return result
