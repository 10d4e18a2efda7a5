"""The generation app's shared objects, built in its lifespan, read by its routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from easel.core.container import container_of
from easel.generation.batching import Batcher
from easel.generation.engines.base import Engine
from easel.generation.service import GenerationService
from easel.generation.settings import GenerationSettings


@dataclass(frozen=True)
class GenerationContainer:
    settings: GenerationSettings
    service: GenerationService
    engine: Engine
    batcher: Batcher


Container = Annotated[GenerationContainer, Depends(container_of(GenerationContainer))]
