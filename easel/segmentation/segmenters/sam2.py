"""SAM 2.1 through transformers: encode the image once, then decode each prompt.

`prepare` runs the image encoder (the seconds of work on a CPU) and keeps its feature
maps, which the service caches by image; `segment` runs only the prompt encoder and the
mask decoder on them (milliseconds on a GPU, about a tenth of a second on a CPU), so a
re-click on the same image never encodes it again. torch and transformers are imported
here alone, lazily: the gateway and the classical segmenter never load them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from easel.segmentation.segmenters.base import Candidate, Prepared, Prompt, dedupe
from easel.segmentation.segmenters.fastsam import resolve_device

WARMUP_SIZE = 64
DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True, eq=False)
class Sam2Prepared(Prepared):
    # The image encoder's feature maps (torch tensors on the model's device), finest first.
    embeddings: tuple[Any, ...]


def resolve_dtype(dtype: str, device: str) -> str:
    """`auto`: float32 on a CPU or Apple GPU; on CUDA bfloat16 where the GPU has it
    (Ampere and later), else float16."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: use auto or one of {', '.join(DTYPES)}")
        return dtype
    if not device.startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


class Sam2Segmenter:
    """A SAM 2 model from a hub id or a folder holding `save_pretrained` output.

    `encoder_calls` counts image-encoder runs on behalf of `prepare` (a warm-up is not
    counted); `local_files_only` loads from a folder or the hub cache without a network
    call; `threads`, when given, sets torch's intra-op thread count (process-wide)."""

    name = "sam2"

    def __init__(
        self,
        *,
        source: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        local_files_only: bool = False,
        threads: int | None = None,
    ) -> None:
        import torch
        from transformers import Sam2Model, Sam2Processor

        if threads is not None:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._torch_dtype = getattr(torch, self.dtype)
        self.encoder_calls = 0
        self._count_lock = threading.Lock()
        started = time.perf_counter()
        self.processor = Sam2Processor.from_pretrained(
            str(source), local_files_only=local_files_only
        )
        model = Sam2Model.from_pretrained(
            str(source), dtype=self._torch_dtype, local_files_only=local_files_only
        )
        self.model = model.to(self.device).eval()
        if self.device != "cpu":  # kernels and allocator warmed before the first request
            warm = self.prepare(Image.new("RGB", (WARMUP_SIZE, WARMUP_SIZE)))
            self.segment(warm, Prompt(positive=np.array([[32.0, 32.0]])), 1)
            self.encoder_calls = 0
        self.load_time_s = time.perf_counter() - started

    def prepare(self, image: Image.Image) -> Sam2Prepared:
        import torch

        with torch.inference_mode():
            pixels = self.processor(images=image.convert("RGB"), return_tensors="pt")
            values = pixels["pixel_values"].to(self.device, self._torch_dtype)
            embeddings = self.model.get_image_embeddings(values)
        with self._count_lock:
            self.encoder_calls += 1
        return Sam2Prepared(size=image.size, embeddings=tuple(embeddings))

    def segment(self, prepared: Prepared, prompt: Prompt, max_masks: int) -> list[Candidate]:
        """Candidates by the model's predicted IoU, best first, near-repeats dropped.

        A lone point is ambiguous (a part, the object, its group): the decoder's three
        multimask outputs answer it. Several points or a box say more, and the single
        output is the better answer; with `max_masks` > 1 the three join it as
        alternatives (a second decoder run, still without the image encoder)."""
        assert isinstance(prepared, Sam2Prepared)
        import torch

        width, height = prepared.size
        inputs = self._prompt_inputs(prompt, (height, width))
        ambiguous = len(prompt.positive) + len(prompt.negative) == 1 and prompt.box is None
        runs = [True] if ambiguous else [False, True] if max_masks > 1 else [False]
        masks: list[Any] = []
        scores: list[Any] = []
        with torch.inference_mode():
            for multimask in runs:
                out = self.model(
                    image_embeddings=list(prepared.embeddings),
                    multimask_output=multimask,
                    **inputs,
                )
                [upscaled] = self.processor.post_process_masks(
                    out.pred_masks.float().cpu(), [[height, width]]
                )
                masks.extend(upscaled[0])  # (K, height, width) bool -> K masks
                scores.extend(out.iou_scores[0, 0].float().cpu().tolist())
        order = np.argsort(-np.asarray(scores), kind="stable")
        candidates = [
            Candidate(
                mask=masks[i].numpy().astype(np.uint8) * 255,
                score=float(np.clip(scores[i], 0.0, 1.0)),
            )
            for i in order
        ]
        return dedupe(candidates, max_masks)

    def _prompt_inputs(self, prompt: Prompt, size: tuple[int, int]) -> dict[str, Any]:
        """Points, labels and box in the model's input frame, as the processor scales them."""
        points = [*prompt.positive.tolist(), *prompt.negative.tolist()]
        labels = [1] * len(prompt.positive) + [0] * len(prompt.negative)
        raw: dict[str, Any] = {}
        if points:
            raw["input_points"] = [[points]]
            raw["input_labels"] = [[labels]]
        if prompt.box is not None:
            raw["input_boxes"] = [[list(prompt.box)]]
        encoded = self.processor(original_sizes=[list(size)], return_tensors="pt", **raw)
        inputs: dict[str, Any] = {}
        for key in raw:
            value = encoded[key].to(self.device)
            inputs[key] = value if key == "input_labels" else value.to(self._torch_dtype)
        return inputs
