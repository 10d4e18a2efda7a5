"""The segmentation service's settings: which segmenter, FastSAM's weights and knobs,
GrabCut's working sizes, request limits, the prepared-image cache, the bounds of `refine`'s
radii and the pool its CPU work runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from easel.core.settings import MaskLimitSettings, SharedSettings, cpu_cores, env


class SegmentationSettings(SharedSettings, MaskLimitSettings):
    segmentation_model: Literal["auto", "fastsam", "grabcut"] = Field(
        "auto", validation_alias=env("SEGMENTATION_MODEL", "SEGMENTATION_MODEL")
    )
    # Relative paths are under MODELS_PATH.
    fastsam_weights: Path = Field(
        Path("FastSAM-s.pt"), validation_alias=env("FASTSAM_WEIGHTS", "FASTSAM_WEIGHTS")
    )
    segmentation_device: Literal["auto", "cuda", "cpu", "mps"] = Field(
        "auto", validation_alias=env("SEGMENTATION_DEVICE")
    )
    fastsam_imgsz: int = Field(1024, ge=32, le=4096, validation_alias=env("FASTSAM_IMGSZ"))
    fastsam_conf: float = Field(0.4, ge=0, le=1, validation_alias=env("FASTSAM_CONF"))
    fastsam_iou: float = Field(0.9, ge=0, le=1, validation_alias=env("FASTSAM_IOU"))
    fastsam_max_det: int = Field(100, ge=1, le=1000, validation_alias=env("FASTSAM_MAX_DET"))
    segmentation_working_size: int = Field(
        512, ge=64, le=4096, validation_alias=env("SEGMENTATION_WORKING_SIZE")
    )
    segmentation_coarse_size: int = Field(
        160, ge=32, le=1024, validation_alias=env("SEGMENTATION_COARSE_SIZE")
    )
    segmentation_max_masks: int = Field(
        5, ge=1, le=32, validation_alias=env("SEGMENTATION_MAX_MASKS")
    )
    segmentation_max_points: int = Field(
        64, ge=1, le=10_000, validation_alias=env("SEGMENTATION_MAX_POINTS")
    )
    segmentation_cache_size: int = Field(
        8, ge=0, le=1024, validation_alias=env("SEGMENTATION_CACHE_SIZE")
    )
    # Masks computed at once (threads); more wait, up to segmentation_max_waiting, then 503.
    segmentation_workers: int = Field(
        default_factory=cpu_cores, ge=1, le=256, validation_alias=env("SEGMENTATION_WORKERS")
    )
    segmentation_max_waiting: int = Field(
        256, ge=0, le=10_000, validation_alias=env("SEGMENTATION_MAX_WAITING")
    )
