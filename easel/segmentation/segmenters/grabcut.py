"""A weight-free segmenter: regions grown along smooth gradients and GrabCut's colour
models, every reading of the click scored alike and the best first.

Why this shape: a click means different things in different places. Inside a sky gradient
or on a shaded ball, the region is what the colour drifts through smoothly from the click
(`classical.region.grow`, a ladder of tolerances, at the working size); on a striped or
speckled object, it is what GrabCut's colour models hold together (on a coarse copy,
`coarse_size`, where it costs little). Each reading becomes a candidate, its outline
snapped onto the real edges by a watershed at the working size, and one score
(`classical.score`) ranks them all. Masks are upscaled to the image's size only at the end,
so a 4K image costs about what a 1K one does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from easel.segmentation.segmenters.base import Candidate, Prepared, Prompt, dedupe, scale_to
from easel.segmentation.segmenters.classical import correct, refine, region
from easel.segmentation.segmenters.classical.score import (
    ScoreMaps,
    colour_bins,
    lab_gradient,
    score,
)

SEED_TOLERANCE = 14.0  # Lab distance from the clicked colour that still counts as "same"


@dataclass(frozen=True)
class GrabCutPrepared(Prepared):
    work: NDArray[np.uint8]  # RGB at working size, lightly denoised: the watershed's input
    lab: NDArray[np.uint8]  # Lab of a blurred `work`: what regions grow in
    maps: ScoreMaps  # what the score reads, at working size
    coarse: NDArray[np.uint8]  # RGB at coarse size: GrabCut's input
    coarse_lab: NDArray[np.float32]  # Lab of a blurred `coarse`: seeds GrabCut's regions


@dataclass(frozen=True)
class _Points:
    """The prompt's points at one size (x, y), clipped to it."""

    positive: list[tuple[int, int]]
    negative: list[tuple[int, int]]
    box: tuple[int, int, int, int] | None  # x1, y1, x2, y2 (end exclusive)


class GrabCutSegmenter:
    name = "grabcut"

    def __init__(self, *, working_size: int = 512, coarse_size: int = 160) -> None:
        self.working_size = working_size
        self.coarse_size = min(coarse_size, working_size)

    def prepare(self, image: Image.Image) -> GrabCutPrepared:
        rgb = np.asarray(image.convert("RGB"))
        work = refine.resize(rgb, scale_to(image.size, self.working_size))
        coarse = refine.resize(work, scale_to((work.shape[1], work.shape[0]), self.coarse_size))
        smooth = refine.as_u8(cv2.medianBlur(work, 3))
        lab = refine.as_u8(cv2.cvtColor(cv2.GaussianBlur(smooth, (0, 0), 1.0), cv2.COLOR_RGB2LAB))
        blurred = cv2.GaussianBlur(coarse, (0, 0), 1.5)
        return GrabCutPrepared(
            size=image.size,
            work=smooth,
            lab=lab,
            maps=ScoreMaps(gradient=lab_gradient(lab.astype(np.float32)), bins=colour_bins(lab)),
            coarse=coarse,
            coarse_lab=cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB).astype(np.float32),
        )

    def segment(self, prepared: Prepared, prompt: Prompt, max_masks: int) -> list[Candidate]:
        assert isinstance(prepared, GrabCutPrepared)
        masks = self._readings(prepared, prompt)
        scored = [Candidate(mask=m * 255, score=score(m, prepared.maps)) for m in masks]
        ranked = sorted(scored, key=lambda c: c.score, reverse=True)
        width, height = prepared.size
        return [
            Candidate(mask=refine.upscale(c.mask, width, height), score=c.score)
            for c in dedupe(ranked, max_masks)
        ]

    # ---- candidates ----------------------------------------------------------------------
    def _readings(self, prepared: GrabCutPrepared, prompt: Prompt) -> list[NDArray[np.uint8]]:
        """Every reading of the prompt, at the working size: with several clicks, the
        first one's best reading corrected by the others (`classical.correct`), else (or
        where no correction can tell the clicks apart) all the clicks solved together."""
        if len(prompt.positive) and len(prompt.positive) + len(prompt.negative) > 1:
            first = Prompt(positive=prompt.positive[:1], box=prompt.box)
            base = max(self._readings(prepared, first), key=lambda m: score(m, prepared.maps))
            points = _scaled(prompt, prepared.size, prepared.lab.shape[:2])
            radius = _radius(prepared.lab.shape[:2])
            readings = correct.corrected(
                prepared.lab, base, points.positive, points.negative, radius
            )
            if readings:
                return [refine.snap(prepared.work, mask) for mask in readings]
        return self._grown(prepared, prompt) + self._grabcuts(prepared, prompt)

    def _grown(self, prepared: GrabCutPrepared, prompt: Prompt) -> list[NDArray[np.uint8]]:
        """One candidate per rung of the tolerance ladder, at the working size."""
        points = _scaled(prompt, prepared.size, prepared.lab.shape[:2])
        if not points.positive:
            return []
        radius = _radius(prepared.lab.shape[:2])
        blocked = np.zeros(prepared.lab.shape[:2], np.uint8)
        for x, y in points.negative:  # a spot: split_off cuts the rest at the neck
            cv2.circle(blocked, (x, y), 2, 1, -1)
        if points.box is not None:
            x1, y1, x2, y2 = points.box
            blocked[:] = 1
            blocked[y1:y2, x1:x2] = 0
        seed_distances = region.distances(prepared.lab, points.positive)
        found = []
        for step, reach in region.LADDER:
            grown = region.grow(prepared.lab, points.positive, seed_distances, blocked, step, reach)
            found.append(self._finish(prepared, grown, points, radius))
        return found

    def _grabcuts(self, prepared: GrabCutPrepared, prompt: Prompt) -> list[NDArray[np.uint8]]:
        """GrabCut seeded from the clicked colour, or the box: the reading for textures."""
        points = _scaled(prompt, prepared.size, prepared.coarse.shape[:2])
        radius = _radius(prepared.coarse.shape[:2])
        trimap = self._trimap(prepared, points, SEED_TOLERANCE, radius)
        selected = refine.grabcut(prepared.coarse, trimap)
        return [self._finish(prepared, selected, points, radius)]

    def _trimap(
        self, prepared: GrabCutPrepared, points: _Points, tolerance: float, radius: int
    ) -> NDArray[np.uint8]:
        height, width = prepared.coarse.shape[:2]
        trimap = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
        if points.box is not None:
            x1, y1, x2, y2 = points.box
            trimap[:] = cv2.GC_BGD
            trimap[y1:y2, x1:x2] = cv2.GC_PR_FGD
        else:
            seeded = region.seed_region(prepared.coarse_lab, points.positive, radius, tolerance)
            trimap[seeded] = cv2.GC_PR_FGD
            # The image border is background, except where the clicked region reaches it.
            frame = np.ones((height, width), bool)
            frame[2:-2, 2:-2] = False
            trimap[frame & ~seeded] = cv2.GC_BGD
        for x, y in points.positive:
            cv2.circle(trimap, (x, y), radius, int(cv2.GC_FGD), -1)
        for x, y in points.negative:
            cv2.circle(trimap, (x, y), radius, int(cv2.GC_BGD), -1)
        return trimap

    def _finish(
        self,
        prepared: GrabCutPrepared,
        selected: NDArray[np.uint8],
        points: _Points,
        radius: int,
    ) -> NDArray[np.uint8]:
        """Split off what negative clicks reject, keep the clicked parts, snap to edges."""
        if points.negative:
            selected = region.split_off(selected, points.positive, points.negative, radius + 1)
        return refine.snap(prepared.work, region.connected(selected, points.positive))


def _radius(shape: tuple[int, ...]) -> int:
    return max(1, round(int(min(shape[:2])) * 0.015))


def _scaled(prompt: Prompt, size: tuple[int, int], shape: tuple[int, ...]) -> _Points:
    height, width = shape[:2]
    sx, sy = width / size[0], height / size[1]

    def at(points: NDArray[np.float64]) -> list[tuple[int, int]]:
        return [(min(width - 1, int(x * sx)), min(height - 1, int(y * sy))) for x, y in points]

    box = None
    if prompt.box is not None:
        x1, y1, x2, y2 = prompt.box
        left, top = int(x1 * sx), int(y1 * sy)
        box = (left, top, max(left + 1, int(np.ceil(x2 * sx))), max(top + 1, int(np.ceil(y2 * sy))))
    return _Points(positive=at(prompt.positive), negative=at(prompt.negative), box=box)
