"""Edge maps: the one canny implementation, shared by the image-utils `canny` op and the
generation service's canny ControlNet preprocessing (`control[i].preprocess`), so an edge
map made by one is the other's exactly. OpenCV and Pillow only: no torch."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from easel.core.errors import InvalidInput


@dataclass(frozen=True)
class CannyParams:
    """OpenCV's Canny parameters; the defaults are the image-utils op's."""

    low_threshold: float = 100.0
    high_threshold: float = 200.0
    aperture_size: int = 3  # 3, 5 or 7
    l2_gradient: bool = False


def canny(image: Image.Image, params: CannyParams = CannyParams()) -> Image.Image:
    """A one-channel (L) edge map of `image`'s grey levels: 255 on edges, 0 elsewhere."""
    if params.low_threshold > params.high_threshold:
        raise InvalidInput.field(
            "low_threshold", f"must not exceed high_threshold ({params.high_threshold:g})"
        )
    gray = np.asarray(image.convert("L"))
    edges = cv2.Canny(
        gray,
        params.low_threshold,
        params.high_threshold,
        apertureSize=params.aperture_size,
        L2gradient=params.l2_gradient,
    )
    return Image.fromarray(edges, "L")
