"""Which models stay loaded: a budget of models and of memory, the least recently used idle
model unloaded first to make room.

"Used" is a call run on the model (its start and its end), or its load; "idle" is no call
running or waiting for it inside the engine. The batcher runs one call at a time, so a
request waiting in the batcher's queue does not pin its model: evicting it costs that
request a reload, never a failure. Nothing here imports torch at module level.
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("easel.generation.diffusers")

GB = 1024**3  # as GPU memory is quoted (nvidia-smi, torch): 2**30 bytes


@dataclass(frozen=True)
class Budget:
    """What all loaded models may hold together; None: no cap of that kind."""

    max_models: int | None = 1
    memory_bytes: int | None = None

    @classmethod
    def from_settings(cls, max_models: int, memory_gb: float | None) -> Budget:
        memory = None if memory_gb is None else int(memory_gb * GB)
        return cls(max_models=max_models or None, memory_bytes=memory)

    def describe(self) -> dict[str, Any]:
        memory = self.memory_bytes
        return {
            "max_models": self.max_models,
            "memory_bytes": memory,
            "memory_gb": None if memory is None else round(memory / GB, 3),
        }


@dataclass(frozen=True)
class Room:
    """The models to unload before (or after) a load, and whether the budget then holds."""

    evict: list[str]
    fits: bool
    busy: list[str]  # loaded models that could not be unloaded: calls are running on them


class Residency:
    """Last use and running calls per model; which idle ones to unload for a load."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._ticks = itertools.count(1)
        self._last_used: dict[str, int] = {}
        self._calls: Counter[str] = Counter()

    def touch(self, name: str) -> None:
        self._last_used[name] = next(self._ticks)

    @contextmanager
    def in_use(self, name: str) -> Iterator[None]:
        """A call on `name`, from before its model loads until it ends: not evicted."""
        self._calls[name] += 1
        self.touch(name)
        try:
            yield
        finally:
            self._calls[name] -= 1
            if self._calls[name] <= 0:
                del self._calls[name]
            self.touch(name)

    def is_busy(self, name: str) -> bool:
        return self._calls[name] > 0

    def room_for(self, sizes: Mapping[str, int], incoming: int | None) -> Room:
        """Which of the loaded models (`sizes`: name -> bytes, the incoming one excluded)
        to unload so that one more model of `incoming` bytes (None: not known yet) fits.
        Idle ones go, least recently used first; a model alone is always let in."""
        resident = dict(sizes)
        idle = sorted(
            (name for name in resident if not self.is_busy(name)),
            key=lambda name: self._last_used.get(name, 0),
        )
        evict: list[str] = []
        while self._over(resident, incoming) and idle:
            victim = idle.pop(0)
            evict.append(victim)
            del resident[victim]
        fits = not resident or not self._over(resident, incoming)
        return Room(evict=evict, fits=fits, busy=sorted(resident) if not fits else [])

    def _over(self, resident: Mapping[str, int], incoming: int | None) -> bool:
        budget = self.budget
        if budget.max_models is not None and len(resident) + 1 > budget.max_models:
            return True
        if budget.memory_bytes is None or incoming is None:
            return False
        return sum(resident.values()) + incoming > budget.memory_bytes


def weights_bytes(holdings: Iterable[Any]) -> int:
    """Bytes of the parameters and buffers of the torch modules given, and of those of the
    pipelines given. Pipelines made with `from_pipe` share their components: each module,
    and each tensor, counts once."""
    import torch

    modules: dict[int, torch.nn.Module] = {}
    for held in holdings:
        is_module = isinstance(held, torch.nn.Module)
        parts = [held] if is_module else getattr(held, "components", {}).values()
        for component in parts:
            if isinstance(component, torch.nn.Module):
                modules.setdefault(id(component), component)
    tensors: dict[int, torch.Tensor] = {}
    for module in modules.values():
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            tensors.setdefault(id(tensor), tensor)
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())


def release(device: str) -> None:
    """After dropping a model's last references: collect it now, and give its GPU memory
    back to the driver (torch's cache would otherwise keep it from the next model)."""
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
