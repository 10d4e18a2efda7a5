"""torch.compile at start-up: on-disk caches, one static graph per shape, and checks that
nothing compiles while requests run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def configure_compile_caches(cache_dir: Path) -> None:
    """Before torch is imported: inductor's on-disk caches, so a restart recompiles from
    cache (seconds) instead of from scratch (minutes)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")


def configure_dynamo(torch: Any, graphs: int) -> None:
    import torch._dynamo
    import torch._inductor.config

    torch._inductor.config.fx_graph_cache = True
    # One static graph per batch size, compiled at start-up: no dynamic-shape graph after
    # the second size, and room for every size used.
    torch._dynamo.config.automatic_dynamic_shapes = False
    for name in ("cache_size_limit", "recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(8, graphs))


def graphs_compiled() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class MegaCache:
    """torch.compiler's portable cache artifacts, one file per model and device: loaded
    before the warm-up compiles, saved after."""

    def __init__(self, cache_dir: Path, tag: str) -> None:
        self.path = cache_dir / f"megacache-{tag}.bin"

    def load(self, torch: Any) -> bool:
        if not self.path.exists() or not hasattr(torch.compiler, "load_cache_artifacts"):
            return False
        torch.compiler.load_cache_artifacts(self.path.read_bytes())
        return True

    def save(self, torch: Any) -> None:
        if not hasattr(torch.compiler, "save_cache_artifacts"):
            return
        saved = torch.compiler.save_cache_artifacts()
        if saved is not None:
            self.path.write_bytes(saved[0])


def release(torch: Any) -> None:
    """Free one model's memory and compiled graphs before the next model is built."""
    import gc

    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
