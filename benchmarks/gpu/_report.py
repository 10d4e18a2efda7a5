"""The printed tables: one row per configuration, MFU against two peaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    name: str
    batch: str
    images_per_s: float | None = None
    seconds: float | None = None  # per image, or per forward
    p50_s: float | None = None
    tflops: float | None = None  # achieved, from counted FLOPs
    note: str = ""


class Report:
    def __init__(self, peak: float | None, measured_peak: float | None) -> None:
        self.peak, self.measured_peak = peak, measured_peak
        self.sections: dict[str, list[dict[str, Any]]] = {}
        self.facts: dict[str, Any] = {}

    def mfu(self, tflops: float | None, peak: float | None) -> str:
        return f"{tflops / peak:.1%}" if tflops and peak else "-"

    def table(self, title: str, rows: Sequence[Row], baseline: float | None = None) -> None:
        headers = [
            "",
            "batch",
            "images/s",
            "s/image",
            "x plain",
            "p50 s",
            "TFLOP/s",
            "MFU sheet",
            "MFU meas.",
            "note",
        ]
        lines = []
        for row in rows:
            ratio = f"{row.images_per_s / baseline:.2f}x" if baseline and row.images_per_s else "-"
            lines.append(
                [
                    row.name,
                    row.batch,
                    f"{row.images_per_s:.3f}" if row.images_per_s else "-",
                    f"{row.seconds:.3f}" if row.seconds else "-",
                    ratio,
                    f"{row.p50_s:.2f}" if row.p50_s else "-",
                    f"{row.tflops:.4g}" if row.tflops else "-",
                    self.mfu(row.tflops, self.peak),
                    self.mfu(row.tflops, self.measured_peak),
                    row.note,
                ]
            )
        widths = [max(len(str(x)) for x in column) for column in zip(headers, *lines, strict=True)]
        print(f"\n{title}")
        for line in [headers, ["-" * w for w in widths], *lines]:
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
        self.sections[title] = [asdict(row) for row in rows]


def loop_row(name: str, batch: int, loop: Any, flops_per_image: float, note: str) -> Row:
    """A row for one closed-loop run (see _serving.closed_loop)."""
    return Row(
        name=name,
        batch=f"<={batch}",
        images_per_s=loop.images_per_s,
        seconds=1 / loop.images_per_s,
        p50_s=loop.p50_s,
        tflops=flops_per_image * loop.images_per_s / 1e12,
        note=note,
    )
