"""FastSAM through ultralytics: segment everything once per image, then answer prompts.

FastSAM proposes every object's mask in one pass; a prompt only chooses among them. So
`prepare` runs the model and keeps its masks at the model's resolution (the feature cache
the service keeps per image), and `segment` picks masks by points and box in milliseconds
and upscales only the ones it returns. ultralytics is imported here alone, lazily: the
gateway and the classical segmenter never load torch.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from easel.segmentation.segmenters.base import Candidate, Prepared, Prompt, dedupe

WARMUP_SIZE = 64


@dataclass(frozen=True)
class FastSAMPrepared(Prepared):
    masks: NDArray[np.bool_]  # (N, mh, mw) at the model's letterboxed resolution
    scores: NDArray[np.float32]  # (N,) the model's confidence per mask
    gain: float  # model pixels per image pixel
    pad: tuple[int, int]  # (left, top) letterbox padding in model pixels


def offline_ultralytics(config_dir: Path) -> None:
    """Keep ultralytics off the network, before it is first imported.

    It reads these variables at import (there is no other way to configure it):
    YOLO_OFFLINE stops its DNS probe, telemetry and update checks; its settings and the
    font it would otherwise download live under our data dir. A copy of matplotlib's
    DejaVu Sans named Arial.ttf stands in for that font.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    font = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" / "Arial.ttf"
    if not font.exists():
        import matplotlib

        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf", font)
    from ultralytics import settings

    settings.update({"sync": False})


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class FastSAMSegmenter:
    name = "fastsam"

    def __init__(
        self,
        *,
        weights: Path,
        device: str,
        config_dir: Path,
        imgsz: int = 1024,
        conf: float = 0.4,
        iou: float = 0.9,
        max_det: int = 100,
    ) -> None:
        # ultralytics would try to download a missing file whose name looks like an
        # official asset: never hand it one.
        if not weights.is_file():
            raise FileNotFoundError(f"FastSAM weights not found at {weights}")
        offline_ultralytics(config_dir)
        import torch
        import ultralytics.utils.torch_utils as torch_utils
        from ultralytics import FastSAM

        # On a CPU ultralytics sets torch's (process-wide) thread count to cores - 1;
        # keep what the process has, which also nearly halves latency on 2 cores.
        torch_utils.NUM_THREADS = torch.get_num_threads()
        self.device = resolve_device(device)
        self.options: dict[str, Any] = {
            "imgsz": imgsz,
            "conf": conf,
            "iou": iou,
            "max_det": max_det,
            "device": self.device,
            "retina_masks": False,
            "verbose": False,
        }
        if self.device == "cuda":
            self.options["quantize"] = 16  # half precision: what FastSAM runs at on a GPU
        self._lock = threading.Lock()  # an ultralytics predictor is not thread-safe
        started = time.perf_counter()
        self.model = FastSAM(str(weights))
        self.prepare(Image.new("RGB", (WARMUP_SIZE, WARMUP_SIZE)))  # builds the predictor
        self.load_time_s = time.perf_counter() - started

    def prepare(self, image: Image.Image) -> FastSAMPrepared:
        bgr = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
        with self._lock:
            result = self.model.predict(bgr, **self.options)[0]
        width, height = image.size
        if result.masks is None or len(result.masks) == 0:
            masks = np.zeros((0, height, width), bool)
            scores = np.zeros(0, np.float32)
        else:
            masks = result.masks.data.cpu().numpy() > 0.5
            scores = result.boxes.conf.float().cpu().numpy()
        model_h, model_w = masks.shape[1:]
        gain = min(model_h / height, model_w / width)
        pad = (
            round((model_w - max(round(width * gain), 1)) / 2 - 0.1),
            round((model_h - max(round(height * gain), 1)) / 2 - 0.1),
        )
        return FastSAMPrepared(size=image.size, masks=masks, scores=scores, gain=gain, pad=pad)

    def segment(self, prepared: Prepared, prompt: Prompt, max_masks: int) -> list[Candidate]:
        assert isinstance(prepared, FastSAMPrepared)
        order, scores = choose(prepared, prompt)
        if len(order) == 0:
            width, height = prepared.size
            return [Candidate(mask=np.zeros((height, width), np.uint8), score=0.0)]
        first = merge_for_points(prepared, prompt, order)
        candidates = [Candidate(mask=first.astype(np.uint8) * 255, score=float(scores[order[0]]))]
        candidates += [
            Candidate(mask=prepared.masks[i].astype(np.uint8) * 255, score=float(scores[i]))
            for i in order[1 : 4 * max_masks]
        ]
        return [
            Candidate(mask=to_image(prepared, c.mask), score=c.score)
            for c in dedupe(candidates, max_masks)
        ]


def to_model(prepared: FastSAMPrepared, points: NDArray[np.float64]) -> NDArray[np.int64]:
    """Image pixel coordinates -> (x, y) indices into the model-resolution masks."""
    model_h, model_w = prepared.masks.shape[1:]
    left, top = prepared.pad
    scaled = np.asarray(points, float).reshape(-1, 2) * prepared.gain + (left, top)
    xy: NDArray[np.int64] = np.floor(scaled).astype(np.int64)
    xy[:, 0] = xy[:, 0].clip(0, model_w - 1)
    xy[:, 1] = xy[:, 1].clip(0, model_h - 1)
    return xy


def choose(prepared: FastSAMPrepared, prompt: Prompt) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Indices of the masks that fit the prompt, best first, and each mask's score.

    A mask fits when it holds a positive point (any, when there are none) and no negative
    one. Ranked by how many positive points it holds, then by its overlap with the box
    (when there is one), then by the model's confidence.
    """
    masks, scores = prepared.masks, prepared.scores
    if len(masks) == 0:
        return np.zeros(0, np.int64), scores
    fits = np.ones(len(masks), bool)
    held = np.zeros(len(masks))
    if len(prompt.positive):
        pos = to_model(prepared, prompt.positive)
        held = masks[:, pos[:, 1], pos[:, 0]].sum(axis=1).astype(float)
        fits &= held > 0
    if len(prompt.negative):
        neg = to_model(prepared, prompt.negative)
        fits &= ~masks[:, neg[:, 1], neg[:, 0]].any(axis=1)
    overlap = np.zeros(len(masks))
    if prompt.box is not None:
        corners = to_model(prepared, np.array(prompt.box, float).reshape(2, 2))
        (x1, y1), (x2, y2) = corners
        inside = masks[:, y1 : y2 + 1, x1 : x2 + 1].sum(axis=(1, 2))
        box_area = (x2 - x1 + 1) * (y2 - y1 + 1)
        overlap = inside / (box_area + masks.sum(axis=(1, 2)) - inside)
    order: NDArray[np.int64] = np.lexsort((-scores, -overlap, -held)).astype(np.int64)
    return order[fits[order]], scores


def merge_for_points(
    prepared: FastSAMPrepared, prompt: Prompt, order: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """The best mask, joined by the best one for each positive point it misses."""
    merged: NDArray[np.bool_] = prepared.masks[order[0]].copy()
    if len(prompt.positive) < 2:
        return merged
    for x, y in to_model(prepared, prompt.positive):
        if merged[y, x]:
            continue
        holding = [i for i in order if prepared.masks[i, y, x]]
        if holding:
            merged |= prepared.masks[holding[0]]
    return merged


def to_image(prepared: FastSAMPrepared, mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A model-resolution mask without its letterbox, at the image's size."""
    width, height = prepared.size
    left, top = prepared.pad
    content_w = max(round(width * prepared.gain), 1)
    content_h = max(round(height * prepared.gain), 1)
    content = mask[top : top + content_h, left : left + content_w]
    if content.size == 0:
        return np.zeros((height, width), np.uint8)
    smooth = cv2.resize(content, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(smooth >= 128, 255, 0).astype(np.uint8)
