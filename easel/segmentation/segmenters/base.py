"""The segmenter boundary: prepare an image once, then answer prompts on it.

`prepare` does the per-image work (decoding aside) that does not depend on the prompt, so
the service can cache its result by image and make re-clicking on the same image cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image


@dataclass(frozen=True)
class Prepared:
    """What a segmenter computed for one image; each segmenter subclasses it."""

    size: tuple[int, int]  # (width, height) of the original image


@dataclass(frozen=True)
class Prompt:
    """Points and box in the original image's pixel coordinates, already validated."""

    positive: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    negative: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2


@dataclass(frozen=True)
class Candidate:
    """One mask at the original size: uint8, 255 selects; `score` in 0-1."""

    mask: NDArray[np.uint8]
    score: float


class Segmenter(Protocol):
    name: str  # reported as `model`

    def prepare(self, image: Image.Image) -> Prepared: ...

    def segment(self, prepared: Prepared, prompt: Prompt, max_masks: int) -> list[Candidate]:
        """Best candidate first; at most `max_masks`."""
        ...


@dataclass
class SegmenterReport:
    """What health says about the segmenter: which one, why, and how loading went."""

    configured: str
    segmenter: str | None
    device: str
    fastsam_weights: str
    fastsam_weights_found: bool
    load_time_s: float = 0.0
    error: str | None = None
    sam2_model: str = ""  # the hub id or folder EASEL_SAM2_MODEL names
    sam2_found: bool = False  # loadable with no network: a folder, the hub cache, built-in
    reason: str = ""  # why this segmenter serves (or none does)


def scale_to(size: tuple[int, int], longest: int) -> float:
    """The factor that brings `size` to at most `longest` on its longest side (never up)."""
    return min(1.0, longest / max(size))


def dedupe(candidates: list[Candidate], max_masks: int, same: float = 0.92) -> list[Candidate]:
    """Drop candidates that nearly repeat an earlier one (IoU >= `same`); keep order."""
    kept: list[Candidate] = []
    for candidate in candidates:
        selected = candidate.mask > 127
        if not any(_iou(selected, other.mask > 127) >= same for other in kept):
            kept.append(candidate)
        if len(kept) == max_masks:
            break
    return kept


def _iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else 1.0
