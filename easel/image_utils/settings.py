"""The image-utils service's settings: what every service shares (the image codec's limits,
the body limit), the mask radii's bounds, and the pool its CPU work runs in."""

from __future__ import annotations

from pydantic import Field

from easel.core.settings import MaskLimitSettings, SharedSettings, cpu_cores, env


class ImageUtilsSettings(SharedSettings, MaskLimitSettings):
    # Ops running at once (threads); more wait, up to image_utils_max_waiting, then 503.
    image_utils_workers: int = Field(
        default_factory=cpu_cores, ge=1, le=256, validation_alias=env("IMAGE_UTILS_WORKERS")
    )
    image_utils_max_waiting: int = Field(
        256, ge=0, le=10_000, validation_alias=env("IMAGE_UTILS_MAX_WAITING")
    )
