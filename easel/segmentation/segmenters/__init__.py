"""Segmenters, chosen by `EASEL_SEGMENTATION_MODEL`: `sam2`, `fastsam`, `grabcut`, or `auto`:
SAM 2.1 when its model is here (a folder, the hub cache, or built-in), else FastSAM when
its weights file exists, else GrabCut. `auto` never downloads; `sam2` downloads from the
hub and `fastsam` fetches an official weights file when the machine is online, and
offline each says in one line what to do."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from easel.core.paths import public_path, public_text
from easel.segmentation.segmenters.base import Segmenter, SegmenterReport
from easel.segmentation.segmenters.grabcut import GrabCutSegmenter
from easel.segmentation.segmenters.sources import (
    SAM2_HUB_IDS,
    Sam2Source,
    fetch_fastsam,
    find_sam2,
    hub_unreachable,
    sam2_not_cached,
)
from easel.segmentation.settings import SegmentationSettings

log = logging.getLogger("easel.segmentation")


def weights_path(settings: SegmentationSettings) -> Path:
    return settings.models_path / settings.fastsam_weights


def uses_sam2(settings: SegmentationSettings) -> bool:
    """Whether the configured segmenter is SAM 2 (`auto`: when its model is here)."""
    model = settings.segmentation_model
    return model == "sam2" or (model == "auto" and find_sam2(settings).local)


def _folders(settings: SegmentationSettings) -> dict[str, Path]:
    # Health shows the weights and load errors: by their folder, not where it lies.
    return {"MODELS_PATH": settings.models_path, "EASEL_DATA_DIR": settings.data_dir}


def build_segmenter(settings: SegmentationSettings) -> tuple[Segmenter | None, SegmenterReport]:
    """Load the configured segmenter (blocking: seconds for a model, longer when it is
    downloaded first). None when the configured one cannot run; the report says why."""
    weights = weights_path(settings)
    sam2 = find_sam2(settings)
    configured = settings.segmentation_model
    report = SegmenterReport(
        configured=configured,
        segmenter=None,
        device="cpu",
        fastsam_weights=public_path(weights, _folders(settings)),
        fastsam_weights_found=weights.is_file(),
        sam2_model=_shown(settings, sam2),
        sam2_found=sam2.local,
    )
    errors: list[str] = []
    segmenter: Segmenter | None = None
    if configured == "sam2" or (configured == "auto" and sam2.local):
        segmenter = _load_sam2(settings, sam2, report, errors)
    if segmenter is None and (
        configured == "fastsam" or (configured == "auto" and report.fastsam_weights_found)
    ):
        segmenter = _load_fastsam(settings, weights, report, errors)
    if segmenter is None and configured in ("auto", "grabcut"):
        started = time.perf_counter()
        segmenter = GrabCutSegmenter(
            working_size=settings.segmentation_working_size,
            coarse_size=settings.segmentation_coarse_size,
        )
        report.device = "cpu"
        report.load_time_s = time.perf_counter() - started
    report.segmenter = segmenter.name if segmenter else None
    report.error = "; ".join(errors) or None
    report.reason = _reason(report)
    return segmenter, report


def _reason(report: SegmenterReport) -> str:
    """Why this segmenter serves, or why none does, in words."""
    if report.configured != "auto":
        chosen = f"EASEL_SEGMENTATION_MODEL={report.configured}"
        return chosen if report.segmenter else f"{chosen} could not load: {report.error}"
    sam2 = (
        f"SAM 2 model {report.sam2_model} found"
        if report.sam2_found
        else f"no SAM 2 model {report.sam2_model} here (folder or hub cache)"
    )
    fastsam = (
        f"FastSAM weights found at {report.fastsam_weights}"
        if report.fastsam_weights_found
        else f"no FastSAM weights at {report.fastsam_weights}"
    )
    if report.segmenter == "sam2":
        return f"auto: {sam2}"
    if report.segmenter == "fastsam":
        return f"auto: {sam2}{' but it failed to load' if report.sam2_found else ''}; {fastsam}"
    failed = f" (failed to load: {report.error})" if report.error else ""
    return f"auto: {sam2}; {fastsam}{failed}; the classical segmenter serves"


def _shown(settings: SegmentationSettings, sam2: Sam2Source) -> str:
    if sam2.kind in ("hub", "hub-cache"):
        return sam2.source
    if sam2.kind == "builtin":
        return settings.sam2_model
    return public_path(Path(sam2.source), _folders(settings))


def _load_sam2(
    settings: SegmentationSettings, sam2: Sam2Source, report: SegmenterReport, errors: list[str]
) -> Segmenter | None:
    if sam2.kind == "no-folder":
        errors.append(
            f"SAM 2 model folder {report.sam2_model} does not exist: put the model there, or "
            f"set EASEL_SAM2_MODEL to a hub id ({', '.join(SAM2_HUB_IDS)})"
        )
        return None
    if sam2.kind == "hub":
        # Not in the hub cache: from_pretrained would download it, or (offline) spend many
        # seconds in retries first. One probe decides.
        why = hub_unreachable(settings.segmentation_network_timeout)
        if why is not None:
            errors.append(sam2_not_cached(sam2.source, why))
            return None
        log.info("downloading SAM 2 model %s from the hub", sam2.source)
    try:
        from easel.segmentation.segmenters.sam2 import Sam2Segmenter
        from easel.segmentation.segmenters.sam2_tiny import ensure_tiny_sam2

        if sam2.kind == "builtin":
            ensure_tiny_sam2(Path(sam2.source))
        segmenter = Sam2Segmenter(
            source=sam2.source,
            device=settings.segmentation_device,
            dtype=settings.sam2_dtype,
            local_files_only=sam2.local,
        )
    except Exception as exc:  # any failure to load (missing extra, bad folder) is reported
        log.exception("SAM 2 failed to load from %s", sam2.source)
        reason = public_text(" ".join(str(exc).split())[:500], _folders(settings))
        errors.append(f"SAM 2 failed to load from {report.sam2_model}: {reason}")
        return None
    report.device = segmenter.device
    report.load_time_s = segmenter.load_time_s
    return segmenter


def _load_fastsam(
    settings: SegmentationSettings, weights: Path, report: SegmenterReport, errors: list[str]
) -> Segmenter | None:
    if not report.fastsam_weights_found:
        # Only when FastSAM is asked for by name (auto uses it only when the file is here).
        problem = fetch_fastsam(settings, weights, report.fastsam_weights)
        if problem is not None:
            errors.append(problem)
            return None
        report.fastsam_weights_found = True
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
        errors.append(f"FastSAM failed to load from {report.fastsam_weights}: {reason}")
        return None
    report.device = fastsam.device
    report.load_time_s = fastsam.load_time_s
    return fastsam
