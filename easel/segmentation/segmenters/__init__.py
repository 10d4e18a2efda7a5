"""Segmenters, chosen by `EASEL_SEGMENTATION_MODEL`: `fastsam`, `grabcut`, or `auto` (FastSAM
when its weights file exists, else GrabCut)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from easel.core.paths import public_path, public_text
from easel.segmentation.segmenters.base import Segmenter, SegmenterReport
from easel.segmentation.segmenters.grabcut import GrabCutSegmenter
from easel.segmentation.settings import SegmentationSettings

log = logging.getLogger("easel.segmentation")


def weights_path(settings: SegmentationSettings) -> Path:
    return settings.models_path / settings.fastsam_weights


def _folders(settings: SegmentationSettings) -> dict[str, Path]:
    # Health shows the weights and load errors: by their folder, not where it lies.
    return {"MODELS_PATH": settings.models_path, "EASEL_DATA_DIR": settings.data_dir}


def build_segmenter(settings: SegmentationSettings) -> tuple[Segmenter | None, SegmenterReport]:
    """Load the configured segmenter (blocking: seconds for FastSAM). None when the
    configured one cannot run; the report says why."""
    weights = weights_path(settings)
    report = SegmenterReport(
        configured=settings.segmentation_model,
        segmenter=None,
        device="cpu",
        fastsam_weights=public_path(weights, _folders(settings)),
        fastsam_weights_found=weights.is_file(),
    )
    segmenter: Segmenter | None = None
    wants_fastsam = settings.segmentation_model == "fastsam" or (
        settings.segmentation_model == "auto" and report.fastsam_weights_found
    )
    if wants_fastsam:
        segmenter = _load_fastsam(settings, weights, report)
    if segmenter is None and settings.segmentation_model != "fastsam":
        started = time.perf_counter()
        segmenter = GrabCutSegmenter(
            working_size=settings.segmentation_working_size,
            coarse_size=settings.segmentation_coarse_size,
        )
        report.load_time_s = time.perf_counter() - started
    report.segmenter = segmenter.name if segmenter else None
    return segmenter, report


def _load_fastsam(
    settings: SegmentationSettings, weights: Path, report: SegmenterReport
) -> Segmenter | None:
    if not report.fastsam_weights_found:
        report.error = (
            f"FastSAM weights not found at {report.fastsam_weights}: put the file there, set "
            "EASEL_FASTSAM_WEIGHTS, or use EASEL_SEGMENTATION_MODEL=grabcut"
        )
        return None
    try:
        from easel.segmentation.segmenters.fastsam import FastSAMSegmenter

        fastsam = FastSAMSegmenter(
            weights=weights,
            device=settings.segmentation_device,
            config_dir=settings.data_dir / "ultralytics",
            imgsz=settings.fastsam_imgsz,
            conf=settings.fastsam_conf,
            iou=settings.fastsam_iou,
            max_det=settings.fastsam_max_det,
        )
    except Exception as exc:  # any failure to load (missing extra, bad file) is reported
        log.exception("FastSAM failed to load from %s", weights)
        reason = public_text(str(exc), _folders(settings))
        report.error = f"FastSAM failed to load from {report.fastsam_weights}: {reason}"
        return None
    report.device = fastsam.device
    report.load_time_s = fastsam.load_time_s
    return fastsam
