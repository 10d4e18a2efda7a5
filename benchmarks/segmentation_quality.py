"""Mask quality and latency of the segmenters on the photo-like scene set (issue 20, item 5).

Quality: every object of `tests/support/scenes.py` (sky gradients, shaded balls with
shadows, trees, grass, touching boxes of one hue, thin poles, rings and rods, the textured
shapes of `tests/segmentation/scenes.py`; sides 0.75x, 1x and 1.5x `--quality-size`) gets
one click at its most interior pixel, then a second, corrective click computed from that
segmenter's own first answer (negative on its largest false-positive part, or positive on
its largest miss); printed: median and 10th-percentile IoU against ground truth per
segmenter and click count.

Latency, at 512², 1024² and 2048²: `first click` is `prepare` + `segment` on a new image
(decoded already: the PNG decode is the service's, measured by `benchmarks/segmentation.py`),
`re-click` is `segment` alone on a prepared image (what the service's cache gives).

Segmenters: `classical` (GrabCutSegmenter, as shipped); `previous`, the baseline measured in
the same run: the classical segmenter as it was before issue 20, read from git at
`BASELINE_COMMIT` into a temporary module (no copy kept here; skipped with a line when git
or the commit is missing); `sam2` for latency only: a randomly initialised SAM 2 of the
real Hiera-tiny architecture (`ensure_tiny_sam2(full_size=True)`), the cost of
`facebook/sam2.1-hiera-tiny` without its weights, whose masks mean nothing (skipped with a
line when transformers or the module is missing). `x previous` is classical / previous.

    .venv/bin/python benchmarks/segmentation_quality.py                # about 6 minutes
    .venv/bin/python benchmarks/segmentation_quality.py --segmenters classical previous -n 10
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
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

from easel.segmentation.segmenters.base import Prompt, Segmenter  # noqa: E402
from easel.segmentation.segmenters.grabcut import GrabCutSegmenter  # noqa: E402
from tests.support.scenes import (  # noqa: E402
    KINDS,
    corrective_click,
    iou,
    make_photo_scene,
    scene_set,
)

BASELINE_COMMIT = "dcb475f"  # the last commit with the classical segmenter of before
SIZES = (512, 1024, 2048)
IOU_TARGETS = (0.9, 0.7)  # classical, one click: median, 10th percentile
LATENCY_TARGET_MS = 150.0  # at 1024²: classical first click; SAM 2 re-click
console = Console(width=130)


def previous_segmenter() -> Segmenter | None:
    """The classical segmenter of `BASELINE_COMMIT`, imported from git's copy of it."""
    path = "easel/segmentation/segmenters/grabcut.py"
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:{path}"],  # noqa: S607
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        console.print(f"previous: skipped (git show {BASELINE_COMMIT}:{path} failed: {exc})")
        return None
    folder = Path(tempfile.mkdtemp())
    (folder / "previous_grabcut.py").write_text(source)
    spec = importlib.util.spec_from_file_location(
        "previous_grabcut", folder / "previous_grabcut.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    segmenter: Segmenter = module.GrabCutSegmenter(working_size=512, coarse_size=160)
    return segmenter


def sam2_segmenter(folder: Path) -> Segmenter | None:
    try:
        from easel.segmentation.segmenters.sam2 import Sam2Segmenter
        from easel.segmentation.segmenters.sam2_tiny import ensure_tiny_sam2
    except ImportError as exc:
        console.print(f"sam2: skipped ({exc})")
        return None
    with console.status("building a full-size random SAM 2 (Hiera-tiny architecture)"):
        source = ensure_tiny_sam2(folder / "sam2-random", full_size=True)
        segmenter: Segmenter = Sam2Segmenter(source=source, device="cpu", threads=os.cpu_count())
    return segmenter


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, 100 * q))


def quality(segmenter: Segmenter, size: int, count: int) -> dict[str, list[float]]:
    """IoU per object, one click and two clicks."""
    one, two = [], []
    for scene in scene_set(size, count):
        prepared = segmenter.prepare(scene.image)
        for target in scene.targets:
            first = segmenter.segment(prepared, Prompt(positive=np.array([target.click], float)), 1)
            one.append(iou(first[0].mask, target.truth))
            point, label = corrective_click(first[0].mask, target.truth)
            positive = [target.click] + ([point] if label else [])
            negative = np.array([] if label else [point], float).reshape(-1, 2)
            prompt = Prompt(positive=np.array(positive, float), negative=negative)
            second = segmenter.segment(prepared, prompt, 1)
            two.append(iou(second[0].mask, target.truth))
    return {"1": one, "2": two}


def latency(segmenter: Segmenter, size: int, n: int) -> dict[str, float]:
    scenes = [make_photo_scene(KINDS[i % len(KINDS)], 500 + i, size) for i in range(n)]
    first, again = [], []
    segmenter.segment(segmenter.prepare(scenes[0].image), _click(scenes[0]), 1)  # warm-up
    for scene in scenes:
        started = time.perf_counter()
        segmenter.segment(segmenter.prepare(scene.image), _click(scene), 1)
        first.append((time.perf_counter() - started) * 1000)
    prepared = segmenter.prepare(scenes[0].image)
    for index in range(n):
        target = scenes[0].targets[index % len(scenes[0].targets)]
        started = time.perf_counter()
        segmenter.segment(prepared, Prompt(positive=np.array([target.click], float)), 1)
        again.append((time.perf_counter() - started) * 1000)
    return {
        "first_p50": statistics.median(first),
        "first_p95": percentile(first, 0.95),
        "again_p50": statistics.median(again),
        "again_p95": percentile(again, 0.95),
    }


def _click(scene: Any) -> Prompt:
    return Prompt(positive=np.array([scene.targets[0].click], float))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segmenters", nargs="+", default=["classical", "previous", "sam2"])
    parser.add_argument("-n", type=int, default=20, help="images per latency case (sam2: 5)")
    parser.add_argument("--count", type=int, default=6, help="scenes of each kind for quality")
    parser.add_argument("--quality-size", type=int, default=512)
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    args = parser.parse_args()
    wait_for_quiet_machine(60, console)
    console.print(machine_line(with_torch="sam2" in args.segmenters))
    with tempfile.TemporaryDirectory() as tmp:
        built: dict[str, Segmenter | None] = {}
        for name in args.segmenters:
            if name == "classical":
                built[name] = GrabCutSegmenter(working_size=512, coarse_size=160)
            elif name == "previous":
                built[name] = previous_segmenter()
            elif name == "sam2":
                built[name] = sam2_segmenter(Path(tmp))
        segmenters = {name: s for name, s in built.items() if s is not None}
        watch = CpuWatch(pids=[])
        scores, times = {}, {}
        for name, segmenter in segmenters.items():
            if name != "sam2":
                with console.status(f"{name}: quality"):
                    scores[name] = quality(segmenter, args.quality_size, args.count)
            for size in args.sizes:
                n = args.n if name != "sam2" else max(3, args.n // 4)
                with console.status(f"{name}: latency at {size}²"):
                    times[name, size] = latency(segmenter, size, n)
        _, interference = watch.report()
    report(scores, times, args)
    console.print(interference)
    return 0


def report(
    scores: dict[str, dict[str, list[float]]],
    times: dict[tuple[str, int], dict[str, float]],
    args: argparse.Namespace,
) -> None:
    objects = len(next(iter(scores.values()))["1"]) if scores else 0
    table = Table(title=f"IoU against ground truth, {objects} objects (sam2: random weights, "
                  "not measured)")  # fmt: skip
    for column in ("segmenter", "clicks", "median", "p10", "mean", "x previous (median)"):
        table.add_column(column, justify="left" if column == "segmenter" else "right")
    for name, by_clicks in scores.items():
        for clicks, values in by_clicks.items():
            base = scores.get("previous", {}).get(clicks)
            ratio = statistics.median(values) / statistics.median(base) if base else None
            table.add_row(
                name,
                clicks,
                f"{statistics.median(values):.3f}",
                f"{percentile(values, 0.1):.3f}",
                f"{statistics.fmean(values):.3f}",
                f"{ratio:.2f}" if ratio and name != "previous" else "-",
            )
    console.print(table)
    table = Table(title="latency, one click | ms (first: prepare + segment; re-click: segment)")
    for column in ("segmenter", "image", "first p50", "first p95", "re-click p50",
                   "re-click p95", "x previous (first p50)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "segmenter" else "right")
    for (name, size), row in times.items():
        base = times.get(("previous", size))
        ratio = row["first_p50"] / base["first_p50"] if base and name != "previous" else None
        table.add_row(
            name,
            f"{size}²",
            *(f"{row[key]:.1f}" for key in ("first_p50", "first_p95", "again_p50", "again_p95")),
            f"{ratio:.2f}" if ratio else "-",
        )
    console.print(table)
    if "classical" in scores:
        one = scores["classical"]["1"]
        met = statistics.median(one) >= IOU_TARGETS[0] and percentile(one, 0.1) >= IOU_TARGETS[1]
        console.print(
            f"target classical one click median >= {IOU_TARGETS[0]}, p10 >= {IOU_TARGETS[1]}: "
            f"{statistics.median(one):.3f}, {percentile(one, 0.1):.3f}, "
            f"{'met' if met else 'NOT met'}"
        )
    for name, key, label in (("classical", "first_p50", "first click"),
                             ("sam2", "again_p50", "re-click")):  # fmt: skip
        if (name, 1024) in times:
            value = times[name, 1024][key]
            verdict = "met" if value <= LATENCY_TARGET_MS else "NOT met"
            console.print(f"target {name} {label} p50 <= {LATENCY_TARGET_MS:g} ms at 1024²: "
                          f"{value:.1f} ms, {verdict}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
