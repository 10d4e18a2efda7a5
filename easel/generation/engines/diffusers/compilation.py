"""torch.compile of the denoiser at start-up, never on a request.

Compiling takes minutes for a full-size model (about 110 s per shape for SDXL on an H100),
so it is done while loading, once per batch size the batcher can form, at the model's
default size. A call whose shape was not warmed runs the eager module instead of
triggering a compile. Inductor's artifacts go under the data dir, so the next cold start
reuses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (images in the call, width, height, whether classifier-free guidance doubles the batch)
Shape = tuple[int, int, int, bool]

_CFG_CONCATENATING_FAMILIES = ("sd", "sdxl")
# Families whose text sequence is always padded to one length: their denoiser's shapes are
# fixed by (images, size, guidance). Qwen's prompt embeddings vary with the prompt (and the
# condition image), so a compiled Qwen transformer would recompile on requests: not done.
COMPILABLE_FAMILIES = ("sd", "sdxl", "flux")


def call_shape(family: str, images: int, width: int, height: int, guidance: float) -> Shape:
    # SD-family pipelines run guided and unguided halves as one doubled batch; FLUX and
    # Qwen do not, so their denoiser sees the same batch whatever the guidance.
    doubled = family in _CFG_CONCATENATING_FAMILIES and guidance > 1
    return images, width, height, doubled


@dataclass
class CompiledDenoiser:
    attribute: str  # "unet" or "transformer"
    eager: Any
    compiled: Any
    warmed: set[Shape] = field(default_factory=set)
    compiled_calls: int = 0
    eager_calls: int = 0

    def use_for(self, pipeline: Any, shape: Shape, *, warming: bool = False) -> None:
        """Put the compiled module in the pipeline for a warmed shape, else the eager one."""
        compiled = warming or shape in self.warmed
        setattr(pipeline, self.attribute, self.compiled if compiled else self.eager)
        if not warming:
            if compiled:
                self.compiled_calls += 1
            else:
                self.eager_calls += 1

    def report(self) -> dict[str, Any]:
        return {
            "warmed_shapes": sorted(list(shape) for shape in self.warmed),
            "compiled_calls": self.compiled_calls,
            "eager_calls": self.eager_calls,
            "graphs": graph_count(),
        }


def compile_denoiser(pipeline: Any, cache_dir: Path) -> CompiledDenoiser:
    import torch

    cache_dir.mkdir(parents=True, exist_ok=True)
    # Inductor reads its cache location from the environment when it compiles.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)
    attribute = "unet" if hasattr(pipeline, "unet") else "transformer"
    eager = getattr(pipeline, attribute)
    return CompiledDenoiser(attribute=attribute, eager=eager, compiled=torch.compile(eager))


def graph_count() -> int:
    """Graphs dynamo has compiled in this process: unchanged by requests once warmed."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
