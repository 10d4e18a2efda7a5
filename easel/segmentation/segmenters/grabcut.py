"""A weight-free segmenter: GrabCut at a small size, edges snapped by a watershed.

Why this shape: GrabCut's colour models hold textured objects together (stripes, checks)
where a plain flood fill or watershed splits them or leaks into a touching neighbour, but it
costs about 1.5 ms per thousand pixels. So it runs on a coarse copy (`coarse_size`, 160 px by
default) seeded from the prompt, and a watershed on a finer copy (`working_size`) puts the
outline back on the real edges within a band around the coarse one. The mask is then
upscaled to the image's size, so a 4K image costs about what a 1K one does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from easel.segmentation.segmenters.base import Candidate, Prepared, Prompt, dedupe, scale_to

SEED_TOLERANCE = 14.0  # Lab distance from the clicked colour that still counts as "same"
EDGE_CONTRAST = 40.0  # gradient that counts as a full-strength edge for the score


@dataclass(frozen=True)
class GrabCutPrepared(Prepared):
    work: NDArray[np.uint8]  # RGB at working size, lightly denoised: the watershed's input
    edges: NDArray[np.float32]  # gradient magnitude of `work`, for scoring
    coarse: NDArray[np.uint8]  # RGB at coarse size: GrabCut's input
    coarse_lab: NDArray[np.float32]  # Lab of a blurred `coarse`: seeds the regions


class GrabCutSegmenter:
    name = "grabcut"

    def __init__(self, *, working_size: int = 512, coarse_size: int = 160) -> None:
        self.working_size = working_size
        self.coarse_size = min(coarse_size, working_size)

    def prepare(self, image: Image.Image) -> GrabCutPrepared:
        rgb = np.asarray(image.convert("RGB"))
        work = _resize(rgb, scale_to(image.size, self.working_size))
        coarse = _resize(work, scale_to((work.shape[1], work.shape[0]), self.coarse_size))
        smooth = _u8(cv2.medianBlur(work, 3))
        gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
        edges = cv2.magnitude(
            cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        )
        blurred = cv2.GaussianBlur(coarse, (0, 0), 1.5)
        lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB).astype(np.float32)
        return GrabCutPrepared(
            size=image.size,
            work=smooth,
            edges=np.asarray(edges / 4, np.float32),
            coarse=coarse,
            coarse_lab=lab,
        )

    def segment(self, prepared: Prepared, prompt: Prompt, max_masks: int) -> list[Candidate]:
        assert isinstance(prepared, GrabCutPrepared)
        # The main answer first; alternatives (a looser and a tighter reading of the click,
        # the outline before snapping) only when several masks are asked for.
        main = self._grabcut(prepared, prompt, SEED_TOLERANCE)
        candidates = [self._snapped(prepared, main)]
        if max_masks > 1:
            if len(prompt.positive) and prompt.box is None:
                looser = self._grabcut(prepared, prompt, 2 * SEED_TOLERANCE)
                candidates.append(self._snapped(prepared, looser))
            if len(prompt.positive):
                region = self._seed_region(prepared, prompt, SEED_TOLERANCE)
                candidates.append(self._snapped(prepared, region.astype(np.uint8)))
            candidates.append(self._unsnapped(prepared, main))
        work_masks = dedupe(candidates[:1] + _by_score(candidates[1:]), max_masks)
        width, height = prepared.size
        return [Candidate(mask=_upscale(c.mask, width, height), score=c.score) for c in work_masks]

    # ---- the coarse pass ---------------------------------------------------------------
    def _points(
        self, prepared: GrabCutPrepared, points: NDArray[np.float64]
    ) -> list[tuple[int, int]]:
        height, width = prepared.coarse.shape[:2]
        sx, sy = width / prepared.size[0], height / prepared.size[1]
        return [(min(width - 1, int(x * sx)), min(height - 1, int(y * sy))) for x, y in points]

    def _radius(self, prepared: GrabCutPrepared) -> int:
        return max(1, round(int(min(prepared.coarse.shape[:2])) * 0.015))

    def _seed_region(
        self, prepared: GrabCutPrepared, prompt: Prompt, tolerance: float
    ) -> NDArray[np.bool_]:
        """Pixels connected to a positive click through colours close to the clicked one."""
        lab = prepared.coarse_lab
        region = np.zeros(lab.shape[:2], bool)
        for x, y in self._points(prepared, prompt.positive):
            disk = np.zeros(lab.shape[:2], np.uint8)
            cv2.circle(disk, (x, y), self._radius(prepared), 1, -1)
            colour = lab[disk > 0].mean(axis=0)
            close = (np.linalg.norm(lab - colour, axis=2) < tolerance).astype(np.uint8)
            _, components = cv2.connectedComponents(close, connectivity=4)
            label = components[y, x]
            region |= (components == label) if label else disk > 0
        return region

    def _grabcut(
        self, prepared: GrabCutPrepared, prompt: Prompt, tolerance: float
    ) -> NDArray[np.uint8]:
        height, width = prepared.coarse.shape[:2]
        trimap = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
        if prompt.box is not None:
            sx, sy = width / prepared.size[0], height / prepared.size[1]
            x1, y1, x2, y2 = prompt.box
            trimap[:] = cv2.GC_BGD
            left, top = int(x1 * sx), int(y1 * sy)
            right, bottom = (
                max(left + 1, int(np.ceil(x2 * sx))),
                max(top + 1, int(np.ceil(y2 * sy))),
            )
            trimap[top:bottom, left:right] = cv2.GC_PR_FGD
        else:
            region = self._seed_region(prepared, prompt, tolerance)
            trimap[region] = cv2.GC_PR_FGD
            # The image border is background, except where the clicked region reaches it.
            frame = np.ones((height, width), bool)
            frame[2:-2, 2:-2] = False
            trimap[frame & ~region] = cv2.GC_BGD
        radius = self._radius(prepared)
        for x, y in self._points(prepared, prompt.positive):
            cv2.circle(trimap, (x, y), radius, int(cv2.GC_FGD), -1)
        for x, y in self._points(prepared, prompt.negative):
            cv2.circle(trimap, (x, y), radius, int(cv2.GC_BGD), -1)
        if np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD)).any() and (trimap != cv2.GC_FGD).any():
            background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
            try:
                # GrabCut seeds k-means from OpenCV's (per-thread) RNG: the same request
                # gives the same mask. The rectangle is unused when starting from a mask.
                cv2.setRNGSeed(0)
                cv2.grabCut(prepared.coarse, trimap, (0, 0, 0, 0), background, foreground, 2,
                            cv2.GC_INIT_WITH_MASK)  # fmt: skip
            except cv2.error:
                pass  # one colour class too small to model: keep the seeds as they are
        selected = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
        positive = self._points(prepared, prompt.positive)
        negative = self._points(prepared, prompt.negative)
        if negative:
            selected = _split_off(selected, positive, negative, self._radius(prepared) + 1)
        return self._connected(selected, positive)

    @staticmethod
    def _connected(selected: NDArray[np.uint8], points: list[tuple[int, int]]) -> NDArray[np.uint8]:
        """Keep the parts holding a positive click (or the largest, for a box alone)."""
        count, components = cv2.connectedComponents(selected, connectivity=8)
        if count <= 2:
            return selected
        keep = {int(components[y, x]) for x, y in points} - {0}
        if not keep:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            keep = {int(sizes.argmax())}
        return np.isin(components, list(keep)).astype(np.uint8)

    # ---- the fine pass -----------------------------------------------------------------
    def _snapped(self, prepared: GrabCutPrepared, coarse: NDArray[np.uint8]) -> Candidate:
        """The coarse mask at working size, its outline moved onto the nearest real edges."""
        height, width = prepared.work.shape[:2]
        mask = _u8(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_NEAREST))
        band = max(2, round(1.5 * width / coarse.shape[1]))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        markers = np.zeros((height, width), np.int32)
        markers[cv2.erode(1 - mask, kernel) > 0] = 1
        markers[cv2.erode(mask, kernel) > 0] = 2
        if (markers == 2).any() and (markers == 1).any():
            cv2.watershed(prepared.work, markers)
            mask = (markers == 2).astype(np.uint8)
        return Candidate(mask=mask * 255, score=_edge_score(mask, prepared.edges))

    def _unsnapped(self, prepared: GrabCutPrepared, coarse: NDArray[np.uint8]) -> Candidate:
        height, width = prepared.work.shape[:2]
        smooth = cv2.resize(coarse * 255, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = _u8(np.asarray(smooth) >= 128)
        return Candidate(mask=mask * 255, score=_edge_score(mask, prepared.edges))


def _split_off(
    selected: NDArray[np.uint8],
    positive: list[tuple[int, int]],
    negative: list[tuple[int, int]],
    radius: int,
) -> NDArray[np.uint8]:
    """Drop the part of the selection nearer (through it) to a negative click than to a
    positive one: a same-coloured region that the colour model cannot tell apart is cut at
    its narrowest neck, as a watershed of the distance to the selection's outline does."""
    whole = selected.copy()
    inside = []
    for x, y in negative:
        spot = np.zeros_like(selected)
        cv2.circle(spot, (x, y), radius, 1, -1)
        if (_u8(cv2.dilate(spot, np.ones((3, 3), np.uint8))) & selected).any():
            inside.append((x, y))
            whole |= spot  # the clicked spot itself was made background: close that hole
    if not inside:
        return selected
    distance = cv2.distanceTransform(whole, cv2.DIST_L2, 3)
    relief = _u8(255 - 255 * distance / max(float(distance.max()), 1.0))
    markers = np.where(whole > 0, 0, 1).astype(np.int32)
    markers[[0, -1], :] = 1
    markers[:, [0, -1]] = 1
    for x, y in inside:
        markers[y, x] = 3
    for x, y in positive:
        markers[y, x] = 2
    cv2.watershed(cv2.cvtColor(relief, cv2.COLOR_GRAY2BGR), markers)
    return _u8(markers == 2) & selected


def _by_score(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: c.score, reverse=True)


def _edge_score(mask: NDArray[np.uint8], edges: NDArray[np.float32]) -> float:
    """How strongly the outline follows image edges, 0-1 (the image border excluded)."""
    outline = mask - cv2.erode(mask, np.ones((3, 3), np.uint8))
    outline[[0, -1], :] = 0
    outline[:, [0, -1]] = 0
    values = edges[outline > 0]
    if values.size == 0:
        return 0.0
    return float(np.clip(values / EDGE_CONTRAST, 0, 1).mean())


def _resize(rgb: NDArray[np.uint8], scale: float) -> NDArray[np.uint8]:
    if scale >= 1:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _u8(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def _u8(array: object) -> NDArray[np.uint8]:
    return np.asarray(array, dtype=np.uint8)


def _upscale(mask: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    if mask.shape == (height, width):
        return mask
    smooth = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(smooth >= 128, 255, 0).astype(np.uint8)
