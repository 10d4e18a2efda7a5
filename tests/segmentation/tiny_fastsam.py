"""A FastSAM-s-architecture checkpoint with random weights, built offline in a second."""

from __future__ import annotations

import copy
from pathlib import Path

from easel.segmentation.segmenters.fastsam import offline_ultralytics


def build_tiny_fastsam(folder: Path) -> Path:
    """A YOLOv8-seg model with one class (what FastSAM-s is) saved as FastSAM loads it.

    Class-score biases at 0 and mask-coefficient biases at 1 make it propose many
    box-shaped masks at conf 0.4, so prompts choose among real masks."""
    offline_ultralytics(folder / "ultralytics")
    import torch
    from ultralytics.nn.tasks import SegmentationModel

    torch.manual_seed(0)
    model = SegmentationModel("yolov8s-seg.yaml", nc=1, verbose=False)
    head = model.model[-1]
    for branch in head.cv3:
        branch[-1].bias.data.fill_(0.0)
    for branch in head.cv4:
        branch[-1].bias.data.fill_(1.0)
    path = folder / "models" / "tiny-fastsam.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "model": copy.deepcopy(model).half(),
        "train_args": {"task": "segment", "imgsz": 640},
        "date": None,
        "version": "test",
    }
    torch.save(checkpoint, path)
    return path
