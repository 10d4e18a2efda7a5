"""SegmentationService: validate the prompt, prepare the image (or take it from the cache),
segment, refine, encode. Synchronous: the app runs it in its CPU pool."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from easel.core.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from easel.core.images import ImageCodec, OutputFormat
from easel.core.masks import DEFAULT_LIMITS, MaskLimits, check_radii, refine_mask
from easel.segmentation.cache import PreparedCache, image_key
from easel.segmentation.schemas import (
    MaskCandidate,
    PreparedImage,
    PrepareRequest,
    SmartMaskRequest,
    SmartMaskResult,
)
from easel.segmentation.segmenters.base import Candidate, Prepared, Prompt, Segmenter


@dataclass(frozen=True)
class Limits:
    max_points: int = 64
    max_masks: int = 5
    refine: MaskLimits = DEFAULT_LIMITS


class SegmentationService:
    def __init__(
        self,
        *,
        segmenter: Segmenter | None,
        codec: ImageCodec,
        cache: PreparedCache,
        limits: Limits,
        unavailable: str = "no segmenter is loaded",
    ) -> None:
        self.segmenter = segmenter
        self.codec = codec
        self.cache = cache
        self.limits = limits
        self.unavailable = unavailable

    def prepare(self, request: PrepareRequest) -> PreparedImage:
        """The image's per-image work done now and kept under its `image_id`."""
        segmenter = self._segmenter()
        if self.cache.capacity == 0:
            raise Conflict(
                "prepared images are off on this server (EASEL_SEGMENTATION_CACHE_SIZE=0): "
                "send the image with each click"
            )
        key = image_key(request.image)
        prepared, cached = self._prepared(segmenter, request.image)
        width, height = prepared.size
        return PreparedImage(
            image_id=key, width=width, height=height, expires_in=self.cache.ttl, cached=cached
        )

    def smart_mask(self, request: SmartMaskRequest) -> SmartMaskResult:
        check_prompt(request, self.limits)
        segmenter = self._segmenter()
        if request.image_id is not None:
            prepared, cached = self._by_id(request.image_id), True
        else:
            assert request.image is not None  # check_prompt: one of the two
            prepared, cached = self._prepared(segmenter, request.image)
        prompt = build_prompt(request, prepared.size)
        if request.refine is not None:  # refused before the segmenter's work, not after
            check_radii(request.refine, prepared.size[::-1], self.limits.refine, "refine.")
        wanted = min(request.max_masks or self.limits.max_masks, self.limits.max_masks)
        candidates = segmenter.segment(prepared, prompt, wanted if request.multimask else 1)
        answers = [self._answer(candidate, request) for candidate in candidates]
        best = answers[0]
        width, height = prepared.size
        return SmartMaskResult(
            **best.model_dump(),
            model=segmenter.name,
            width=width,
            height=height,
            cached=cached,
            masks=answers if request.multimask else None,
        )

    def _segmenter(self) -> Segmenter:
        if self.segmenter is None:
            raise ServiceUnavailable(self.unavailable)
        return self.segmenter

    def _by_id(self, image_id: str) -> Prepared:
        prepared = self.cache.get(image_id)
        if prepared is None:
            raise NotFound(
                f"image_id {image_id!r} is unknown or expired: prepare the image again "
                "(POST /api/smart-mask/prepare), or send it as `image`",
                details={"field": "image_id"},
            )
        return prepared

    def _prepared(self, segmenter: Segmenter, data: str | bytes) -> tuple[Prepared, bool]:
        key = image_key(data)
        prepared = self.cache.get(key)
        if prepared is not None:
            return prepared, True
        prepared = segmenter.prepare(self.codec.decode(data, "image"))
        self.cache.put(key, prepared)
        return prepared, False

    def _answer(self, candidate: Candidate, request: SmartMaskRequest) -> MaskCandidate:
        mask = candidate.mask
        if request.refine is not None and not request.refine.is_identity:
            mask = refine_mask(mask, request.refine, self.limits.refine, "refine.")
        selected: NDArray[np.uint8] = (mask >= 128).astype(np.uint8)
        box = bounding_box(selected)
        return MaskCandidate(
            mask=self.codec.encode_base64(Image.fromarray(mask, "L"), OutputFormat.PNG),
            bbox=list(box) if box else None,
            area=int(np.count_nonzero(selected)),
            score=round(candidate.score, 4),
        )


def bounding_box(selected: NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2), exclusive end, of the non-zero pixels; None when empty."""
    ys = np.flatnonzero(selected.any(axis=1))
    xs = np.flatnonzero(selected.any(axis=0))
    if len(xs) == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def check_prompt(request: SmartMaskRequest, limits: Limits) -> None:
    """What can be judged without the image: which image, counts and labels."""
    if (request.image is None) == (request.image_id is None):
        field = "image" if request.image is None else "image_id"
        raise InvalidInput.field(field, "give the image, or the image_id of a prepared one")
    if not request.points and request.box is None:
        raise InvalidInput.field("points", "give at least one point, or a box")
    if len(request.points) > limits.max_points:
        raise InvalidInput.field("points", f"at most {limits.max_points} points")
    if request.labels is not None:
        if len(request.labels) != len(request.points):
            raise InvalidInput.field(
                "labels",
                f"{len(request.labels)} labels for {len(request.points)} points: "
                "give one label per point",
            )
        if request.box is None and 1 not in request.labels:
            raise InvalidInput.field(
                "labels", "at least one point must be positive (1) unless a box is given"
            )


def build_prompt(request: SmartMaskRequest, size: tuple[int, int]) -> Prompt:
    """The prompt in image pixels, each point and the box checked against the image."""
    width, height = size
    for index, (x, y) in enumerate(request.points):
        if not (0 <= x < width and 0 <= y < height):
            raise InvalidInput.field(
                f"points.{index}", f"({x:g}, {y:g}) lies outside the {width}x{height} image"
            )
    if request.box is not None:
        x1, y1, x2, y2 = request.box
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise InvalidInput.field(
                "box", f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}] exceeds the {width}x{height} image"
            )
    labels = request.labels or [1] * len(request.points)
    points = np.array(request.points, float).reshape(-1, 2)
    chosen = np.array(labels, int) == 1
    return Prompt(positive=points[chosen], negative=points[~chosen], box=request.box)
