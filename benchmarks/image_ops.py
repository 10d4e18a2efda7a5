"""Mask op cost per radius and size, before and after issue 16 item 6.

Every mask op (dilate, erode, feather, invert, and smart-mask's `refine` as a chain of
fill_holes + dilate + erode + feather at the same radius) at radius 1, 16, 128 and the
largest legal one (512) on 1 MP (1024²) and 4 MP (2048²) binary masks shaped like a
segmenter's (discs, boxes, specks), plus a grey mask at the grey limit. `before` is the old
implementation, kept below (the disk itself as the structuring element, a direct Gaussian
blur); `after` is `easel.core.masks.refine_mask`. Both run in this process, one call at a
time, median of N; `x faster` is before / after, measured in the same run; `max |diff|` the
largest grey-level difference between their outputs. The op alone: decoding and encoding
the PNG are the same before and after (the `service` column is the whole
`ImageUtilsService.mask` call, PNG in and out, after).

The old algorithm costs area x radius²: its slowest cases take minutes, so by default a
`before` case is measured only when its estimate (the last measured case of the same op,
scaled by area x (2r + 1)², or x (2r + 1) for feather) is under `--max-before-s`; the others
show the estimate, marked `est.`. Target: every legal op on 4 MP <= 200 ms.

    .venv/bin/python benchmarks/image_ops.py                    # about 2 minutes
    .venv/bin/python benchmarks/image_ops.py -n 3 --max-before-s 600
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import CpuWatch, machine_line, wait_for_quiet_machine  # noqa: E402

from easel.core.images import ImageCodec  # noqa: E402
from easel.core.masks import MAX_RADIUS, MaskRefine, disk, fill_holes, refine_mask  # noqa: E402
from easel.image_utils.schemas import MaskRequest  # noqa: E402
from easel.image_utils.service import ImageUtilsService  # noqa: E402
from easel.image_utils.settings import ImageUtilsSettings  # noqa: E402
from tests.support.images import b64  # noqa: E402

SIDES = (1024, 2048)
RADII = (1, 16, 128, MAX_RADIUS)
OPS = ("dilate", "erode", "feather", "invert", "refine")
TARGET_MS = 200.0
console = Console(width=130)

Mask = NDArray[np.uint8]


# ---- the implementation before issue 16, item 6 (the baseline) ---------------------------


def old_refine_mask(mask: Mask, refine: MaskRefine) -> Mask:
    """easel.core.masks.refine_mask as it was: cost area x radius^2 for dilate and erode,
    area x sigma for feather."""
    out: Any = mask
    if refine.threshold is not None:
        out = np.where(out >= refine.threshold, 255, 0).astype(np.uint8)
    if refine.fill_holes:
        out = fill_holes(out)
    if refine.dilate:
        out = cv2.dilate(out, disk(refine.dilate), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if refine.erode:
        out = cv2.erode(out, disk(refine.erode), borderType=cv2.BORDER_CONSTANT, borderValue=255)
    if refine.feather:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=refine.feather, borderType=cv2.BORDER_REPLICATE)
    if refine.invert:
        out = 255 - out
    return np.ascontiguousarray(out, dtype=np.uint8)


# ---- cases ----------------------------------------------------------------------------


def segmenter_like_mask(side: int, seed: int = 0) -> Mask:
    rng = np.random.default_rng(seed)
    mask = np.zeros((side, side), np.uint8)
    for _ in range(6):
        centre = (int(rng.integers(0, side)), int(rng.integers(0, side)))
        cv2.circle(mask, centre, int(rng.integers(side // 40, side // 5)), 255, -1)
    cv2.rectangle(mask, (0, 0), (side // 6, side // 8), 255, -1)
    mask[rng.random(mask.shape) < 0.0005] = 255  # specks: work everywhere, not only at one blob
    return mask


def refine_for(op: str, radius: int) -> MaskRefine:
    if op == "invert":
        return MaskRefine(invert=True)
    if op == "refine":
        return MaskRefine(fill_holes=True, dilate=radius, erode=radius, feather=float(radius))
    return MaskRefine.model_validate({op: radius})


@dataclass
class Row:
    op: str
    mask: str
    side: int
    radius: int
    before_ms: float | None
    before_estimate_ms: float | None
    after_ms: float
    service_ms: float | None
    max_diff: int | None


def median_ms(fn: Callable[[], Any], n: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(n):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(
    op: str, mask: Mask, label: str, radius: int, n: int, estimate_ms: float | None, args: Any
) -> Row:
    refine = refine_for(op, radius)
    after_ms, after = median_ms(lambda: refine_mask(mask, refine), n)
    before_ms = before = None
    if estimate_ms is None or estimate_ms <= args.max_before_s * 1000:
        # Slow cases once: a second run would only confirm minutes.
        runs = n if (estimate_ms or 0) < 2000 else 1
        before_ms, before = median_ms(lambda: old_refine_mask(mask, refine), runs)
    diff = None
    if before is not None:
        diff = int(np.abs(before.astype(np.int16) - after.astype(np.int16)).max())
    return Row(
        op=op,
        mask=label,
        side=mask.shape[0],
        radius=radius,
        before_ms=before_ms,
        before_estimate_ms=None if before_ms is not None else estimate_ms,
        after_ms=after_ms,
        service_ms=None,
        max_diff=diff,
    )


def service_ms(service: ImageUtilsService, mask: Mask, op: str, radius: int, n: int) -> float:
    fields = refine_for(op, radius).model_dump(exclude_defaults=True)
    request = MaskRequest.model_validate({"mask": b64(Image.fromarray(mask, "L")), **fields})
    return median_ms(lambda: service.mask(request), n)[0]


# How the old cost grows with the kernel's side (2r + 1): the disk's area, or the blur
# kernel's length.
RADIUS_POWER = {"dilate": 2, "erode": 2, "refine": 2, "feather": 1, "invert": 0}


def estimate_ms(earlier: list[tuple[int, int, float]], op: str, side: int, radius: int) -> float:
    """The old cost scaled from the last measured case of the same op: area x side^p."""
    if not earlier:
        return 0.0
    side0, radius0, ms = earlier[-1]
    kernel = (2 * radius + 1) / (2 * radius0 + 1)
    return ms * (side / side0) ** 2 * kernel ** RADIUS_POWER[op]


def run(args: argparse.Namespace) -> list[Row]:
    service = ImageUtilsService(codec=ImageCodec.from_settings(ImageUtilsSettings()))
    rows: list[Row] = []
    measured: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
    for side in sorted(args.sides):
        binary = segmenter_like_mask(side)
        grey = cv2.GaussianBlur(binary, (0, 0), 1.5)  # anti-aliased edges: a grey mask
        cases = [(op, binary, "binary", r) for op in args.ops for r in sorted(args.radii)]
        cases += [(op, grey, "grey", 8) for op in ("dilate", "erode") if op in args.ops]
        for op, mask, label, radius in cases:
            if op == "invert" and radius != min(args.radii):
                continue  # no radius
            earlier = measured.setdefault((op, label), [])
            estimate = estimate_ms(earlier, op, side, radius) if earlier else None
            with console.status(f"{op} r={radius} {label} {side}²"):
                row = measure(op, mask, label, radius, args.n, estimate, args)
                if side == max(args.sides):
                    row.service_ms = service_ms(service, mask, op, radius, args.n)
            if row.before_ms is not None:
                earlier.append((side, radius, row.before_ms))
            rows.append(row)
    return rows


def times(ratio: float) -> str:
    return f"{ratio:.1f}" if ratio < 10 else f"{ratio:,.0f}"


def table(rows: list[Row]) -> Table:
    out = Table(title="mask ops, one call in this process | ms (median)")
    for column in ("op", "mask", "radius", "before", "after", "x faster", "max |diff|",
                   "service (after)"):  # fmt: skip
        out.add_column(column, justify="left" if column in ("op", "mask") else "right")
    for row in rows:
        if row.before_ms is not None:
            before, ratio = f"{row.before_ms:,.1f}", times(row.before_ms / row.after_ms)
        elif row.before_estimate_ms is not None:
            before = f"~{row.before_estimate_ms:,.0f} (est.)"
            ratio = "~" + times(row.before_estimate_ms / row.after_ms)
        else:
            before, ratio = "skipped", ""
        out.add_row(
            row.op,
            f"{row.mask} {row.side}²",
            "-" if row.op == "invert" else str(row.radius),
            before,
            f"{row.after_ms:,.1f}",
            ratio,
            "" if row.max_diff is None else str(row.max_diff),
            "" if row.service_ms is None else f"{row.service_ms:,.1f}",
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="calls per case (median; default 5)")
    parser.add_argument("--sides", nargs="+", type=int, default=list(SIDES))
    parser.add_argument("--radii", nargs="+", type=int, default=list(RADII))
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    parser.add_argument(
        "--max-before-s",
        type=float,
        default=30.0,
        help="measure a `before` case only if estimated under this (default 30 s)",
    )
    parser.add_argument(
        "--max-wait", type=float, default=60.0, help="seconds to wait for a quiet machine"
    )
    args = parser.parse_args()
    wait_for_quiet_machine(args.max_wait, console)
    console.print(machine_line(with_torch=False) + f"; OpenCV {cv2.__version__}")
    watch = CpuWatch(pids=[])
    rows = run(args)
    _, interference = watch.report()
    console.print(table(rows))
    largest = [r for r in rows if r.side == max(args.sides)]
    worst = max(largest, key=lambda r: r.after_ms)
    met = worst.after_ms <= TARGET_MS
    console.print(
        f"target: every legal op on {max(args.sides)}² <= {TARGET_MS:g} ms: slowest "
        f"{worst.op} r={worst.radius} ({worst.mask}) {worst.after_ms:.1f} ms, "
        f"{'met' if met else 'NOT met'}"
    )
    console.print(interference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
