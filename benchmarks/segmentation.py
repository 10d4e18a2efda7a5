"""Latency of a point mask on the segmentation service, per segmenter and image size.

For each segmenter (`grabcut`, and `fastsam` on a FastSAM-s-architecture checkpoint with
random weights built here: the same network and code path as real FastSAM-s weights, so the
same cost, but meaningless masks) and each size (512², 1024², 2048² generated scenes), it
calls the service in this process (`SegmentationService.smart_mask`: decode the PNG, the
segmenter's per-image work, the prompt, the mask upscaled to full size and PNG-encoded) with
one interior click, N times on fresh images (`first click`, cache off) and N times on one
image already cached (`re-click`). It prints p50/p95 per case, the IoU of the grabcut masks
against the scenes' ground truth, and checks the target: grabcut p50 <= 150 ms at 1024².

    .venv/bin/python benchmarks/segmentation.py                 # about a minute
    .venv/bin/python benchmarks/segmentation.py --segmenters grabcut -n 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import CpuWatch, machine_line, wait_for_quiet_machine  # noqa: E402

from easel.core.images import ImageCodec  # noqa: E402
from easel.segmentation.cache import PreparedCache  # noqa: E402
from easel.segmentation.schemas import SmartMaskRequest  # noqa: E402
from easel.segmentation.segmenters import build_segmenter  # noqa: E402
from easel.segmentation.service import Limits, SegmentationService  # noqa: E402
from easel.segmentation.settings import SegmentationSettings  # noqa: E402
from tests.segmentation.scenes import iou, make_scene  # noqa: E402
from tests.segmentation.tiny_fastsam import build_tiny_fastsam  # noqa: E402
from tests.support.images import b64, decode_b64  # noqa: E402

SIZES = (512, 1024, 2048)
TARGET_MS = 150.0
console = Console(width=120)


def service_for(name: str, data: Path, weights: Path | None, cache: int) -> SegmentationService:
    values: dict[str, Any] = {"segmentation_model": name, "data_dir": data}
    if weights is not None:
        values.update(models_path=weights.parent, fastsam_weights=weights.name)
    settings = SegmentationSettings.model_validate(values)
    segmenter, report = build_segmenter(settings)
    assert segmenter is not None, report.error
    return SegmentationService(
        segmenter=segmenter,
        codec=ImageCodec.from_settings(settings),
        cache=PreparedCache(cache),
        limits=Limits(),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(name: str, size: int, n: int, data: Path, weights: Path | None) -> dict[str, Any]:
    scenes = [make_scene(seed, size) for seed in range(n)]
    requests = [SmartMaskRequest(image=b64(s.image), points=[list(s.click)]) for s in scenes]
    fresh = service_for(name, data, weights, cache=0)
    fresh.smart_mask(requests[0])  # warm-up
    first, scores = [], []
    for scene, request in zip(scenes, requests, strict=True):
        started = time.perf_counter()
        result = fresh.smart_mask(request)
        first.append((time.perf_counter() - started) * 1000)
        scores.append(iou(np.asarray(decode_b64(result.mask)), scene.truth))
    cached = service_for(name, data, weights, cache=1)
    cached.smart_mask(requests[0])
    again = []
    for _ in range(n):
        started = time.perf_counter()
        assert cached.smart_mask(requests[0]).cached
        again.append((time.perf_counter() - started) * 1000)
    return {
        "segmenter": name,
        "size": size,
        "first_p50": statistics.median(first),
        "first_p95": percentile(first, 0.95),
        "again_p50": statistics.median(again),
        "again_p95": percentile(again, 0.95),
        "iou": statistics.median(scores),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segmenters", nargs="+", default=["grabcut", "fastsam"])
    parser.add_argument("-n", type=int, default=20, help="requests per case (fastsam: half)")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    args = parser.parse_args()
    wait_for_quiet_machine(60, console)
    console.print(machine_line(with_torch="fastsam" in args.segmenters))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = build_tiny_fastsam(folder) if "fastsam" in args.segmenters else None
        watch = CpuWatch(pids=[])
        for name in args.segmenters:
            n = args.n if name == "grabcut" else max(3, args.n // 2)
            for size in args.sizes:
                with console.status(f"{name} {size}x{size}"):
                    rows.append(measure(name, size, n, folder / "data", weights))
        _, interference = watch.report()
    table = Table(title="POST /api/smart-mask in process, one interior click | ms")
    for column in ("segmenter", "image", "first p50", "first p95", "re-click p50",
                   "re-click p95", "median IoU"):  # fmt: skip
        table.add_column(column, justify="left" if column == "segmenter" else "right")
    for row in rows:
        table.add_row(
            row["segmenter"],
            f"{row['size']}²",
            f"{row['first_p50']:.1f}",
            f"{row['first_p95']:.1f}",
            f"{row['again_p50']:.1f}",
            f"{row['again_p95']:.1f}",
            f"{row['iou']:.3f}" if row["segmenter"] == "grabcut" else "(random weights)",
        )
    console.print(table)
    target = [r for r in rows if r["segmenter"] == "grabcut" and r["size"] == 1024]
    if target:
        met = target[0]["first_p50"] <= TARGET_MS
        console.print(
            f"target grabcut p50 <= {TARGET_MS:g} ms at 1024²: "
            f"{target[0]['first_p50']:.1f} ms, {'met' if met else 'NOT met'}"
        )
    console.print(interference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
