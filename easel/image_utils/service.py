"""ImageUtilsService: decode, run one op, encode. Synchronous: the app runs it in its CPU
pool. Every op costs in proportion to the pixels it reads and writes, whatever its
parameters (the codec bounds those)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from easel.core.edges import CannyParams, canny
from easel.core.errors import PayloadTooLarge
from easel.core.images import ImageCodec
from easel.core.masks import DEFAULT_LIMITS, MaskLimits, MaskRefine, refine_mask
from easel.image_utils import ops
from easel.image_utils.schemas import (
    CannyRequest,
    ConvertRequest,
    CropRequest,
    DiffRequest,
    DiffResult,
    ExtractObjectRequest,
    ImageOutput,
    ImageResult,
    MaskRequest,
    ResizeRequest,
)


class ImageUtilsService:
    def __init__(self, *, codec: ImageCodec, mask_limits: MaskLimits = DEFAULT_LIMITS) -> None:
        self.codec = codec
        self.mask_limits = mask_limits

    def _result(self, image: Image.Image, output: ImageOutput) -> ImageResult:
        fmt = output.output_format
        return ImageResult(
            image=self.codec.encode_base64(image, fmt, output.quality),
            format=fmt,
            media_type=fmt.media_type,
            width=image.width,
            height=image.height,
        )

    def resize(self, request: ResizeRequest) -> ImageResult:
        image = self.codec.decode(request.image, "image")
        width, height = ops.target_size(
            image.size,
            width=request.width,
            height=request.height,
            scale=request.scale,
            fit=request.fit,
        )
        if width * height > self.codec.max_pixels:
            raise PayloadTooLarge(
                f"the resized image would be {width}x{height}, over the limit of "
                f"{self.codec.max_pixels} pixels"
            )
        resized = ops.resize(
            image,
            width=request.width,
            height=request.height,
            scale=request.scale,
            fit=request.fit,
            resample=request.resample,
        )
        return self._result(resized, request)

    def crop(self, request: CropRequest) -> ImageResult:
        image = self.codec.decode(request.image, "image")
        box = request.model_dump(include={"x", "y", "width", "height"})
        return self._result(ops.crop(image, **box), request)

    def convert(self, request: ConvertRequest) -> ImageResult:
        return self._result(self.codec.decode(request.image, "image"), request)

    def extract_object(self, request: ExtractObjectRequest) -> ImageResult:
        image = self.codec.decode(request.image, "image")
        mask = self.codec.decode_mask(request.mask, "mask")
        cutout = ops.extract_object(image, mask, crop_to_mask=request.crop, padding=request.padding)
        return self._result(cutout, request)

    def diff(self, request: DiffRequest) -> DiffResult:
        image_a = self.codec.decode(request.image_a, "image_a")
        image_b = self.codec.decode(request.image_b, "image_b")
        difference = ops.diff(image_a, image_b)
        return DiffResult(
            mae=difference.mae,
            mae_normalized=difference.mae / 255,
            max_error=difference.max_error,
            changed_fraction=difference.changed_fraction,
            heatmap=self._result(difference.heatmap, request),
        )

    def canny(self, request: CannyRequest) -> ImageResult:
        image = self.codec.decode(request.image, "image")
        params = CannyParams(
            low_threshold=request.low_threshold,
            high_threshold=request.high_threshold,
            aperture_size=request.aperture_size,
            l2_gradient=request.l2_gradient,
        )
        edges = canny(image, params)  # the generation service's canny preprocessing too
        return self._result(edges, request)

    def mask(self, request: MaskRequest) -> ImageResult:
        mask = self.codec.decode_mask(request.mask, "mask")
        refine = MaskRefine.model_validate(request.model_dump(include=set(MaskRefine.model_fields)))
        refined = refine_mask(np.asarray(mask), refine, self.mask_limits)
        return self._result(Image.fromarray(refined, "L"), request)
