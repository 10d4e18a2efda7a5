"""The segmentation service's settings: which segmenter, SAM 2's model and dtype, FastSAM's
weights and knobs, GrabCut's working sizes, request limits, the prepared-image cache, the
bounds of `refine`'s radii and the pool its CPU work runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from easel.core.settings import MaskLimitSettings, SharedSettings, cpu_cores, env


class SegmentationSettings(SharedSettings, MaskLimitSettings):
    segmentation_model: Literal["auto", "sam2", "fastsam", "grabcut"] = Field(
        "auto", validation_alias=env("SEGMENTATION_MODEL", "SEGMENTATION_MODEL")
    )
    # A hub id, a folder (relative: under MODELS_PATH, where `MODELS_PATH/<hub id>` is
    # looked for first), or `tiny-random` (random weights built into EASEL_DATA_DIR).
    sam2_model: str = Field(
        "facebook/sam2.1-hiera-tiny", min_length=1, validation_alias=env("SAM2_MODEL")
    )
    sam2_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", validation_alias=env("SAM2_DTYPE")
    )
    # How long a probe of the model hub (SAM 2) or of the FastSAM release host may take
    # before the machine counts as offline: a missing model is then refused at once.
    segmentation_network_timeout: float = Field(
        3.0, gt=0, le=60, validation_alias=env("SEGMENTATION_NETWORK_TIMEOUT")
    )
    # Relative paths are under MODELS_PATH.
    fastsam_weights: Path = Field(
        Path("FastSAM-s.pt"), validation_alias=env("FASTSAM_WEIGHTS", "FASTSAM_WEIGHTS")
    )
    # Where a missing official FastSAM file (FastSAM-s.pt, FastSAM-x.pt) is fetched from
    # on first use: `<url>/<file name>` (the same setting `easel download` reads).
    fastsam_weights_url: str = Field(
        "https://github.com/ultralytics/assets/releases/download/v8.3.0",
        validation_alias=env("FASTSAM_WEIGHTS_URL"),
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
        16, ge=0, le=1024, validation_alias=env("SEGMENTATION_CACHE_SIZE")
    )
    # Seconds a prepared image (an `image_id`) lives after its last use.
    segmentation_cache_ttl: float = Field(
        600.0, gt=0, le=86_400, validation_alias=env("SEGMENTATION_CACHE_TTL")
    )
    # Masks computed at once (threads); more wait, up to segmentation_max_waiting, then 503.
    segmentation_workers: int = Field(
        default_factory=cpu_cores, ge=1, le=256, validation_alias=env("SEGMENTATION_WORKERS")
    )
    segmentation_max_waiting: int = Field(
        256, ge=0, le=10_000, validation_alias=env("SEGMENTATION_MAX_WAITING")
    )
