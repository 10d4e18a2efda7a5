"""The GPU services' containers: the model loads once, in the Modal enter hooks, in two
halves, so a memory snapshot can keep the first.

`stage()` runs before the snapshot (no GPU): settings, imports, and, for the families
small enough, the weights read into memory. `place()` runs in every container after it
(or after a restore): the weights onto the GPU, or the whole load where nothing was
staged. `app()` is the service's own app around what was loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from easel.compose.modal.runtime import load_settings, refuse_unprotected, warm_imports
from easel.compose.modal.settings import ModalDeploySettings
from easel.compose.settings import EaselSettings
from easel.generation.app import build_engine
from easel.generation.app import create_app as create_generation_app
from easel.generation.engines.base import Engine
from easel.segmentation.app import create_app as create_segmentation_app
from easel.segmentation.segmenters import build_segmenter, uses_sam2, weights_path
from easel.segmentation.segmenters.base import Segmenter, SegmenterReport

DIFFUSERS_IMPORTS = ("torch", "diffusers", "transformers", "accelerate")
# Not ultralytics: it reads its offline switches at import, which the segmenter sets first.
FASTSAM_IMPORTS = ("torch", "torchvision")
SAM2_IMPORTS = ("torch", "transformers")


@dataclass
class GenerationContainer:
    settings: EaselSettings
    engine: Engine
    staged: bool = False

    @classmethod
    def stage(cls, deploy: ModalDeploySettings) -> GenerationContainer:
        settings = load_settings("generation")
        refuse_unprotected(settings, "generation")
        generation = settings.generation
        engine = build_engine(generation)
        container = cls(settings=settings, engine=engine)
        if generation.generation_engine != "diffusers" or not deploy.memory_snapshot:
            return container
        warm_imports(DIFFUSERS_IMPORTS)
        from easel.generation.engines.diffusers import DiffusersEngine

        assert isinstance(engine, DiffusersEngine)
        spec = engine.models.get(engine.default_model)
        # `auto` would ask torch for a GPU, which the snapshot's machine has not: torch
        # would remember there is none. Staging needs the device named (Modal: cuda).
        named_device = generation.generation_device != "auto"
        if named_device and spec is not None and spec.family in deploy.snapshot_families:
            engine.load_now(staging=True)
            container.staged = True
        return container

    def place(self) -> None:
        from easel.generation.engines.diffusers import DiffusersEngine

        if not isinstance(self.engine, DiffusersEngine):
            return  # ComfyUI: nothing loads here
        if self.staged:
            self.engine.place_staged()
        else:
            self.engine.load_now()

    def app(self) -> FastAPI:
        return create_generation_app(self.settings.generation, engine=self.engine)


@dataclass
class SegmentationContainer:
    settings: EaselSettings
    loaded: tuple[Segmenter | None, SegmenterReport] | None = None

    @classmethod
    def stage(cls, deploy: ModalDeploySettings) -> SegmentationContainer:
        settings = load_settings("segmentation")
        refuse_unprotected(settings, "segmentation")
        segmentation = settings.segmentation
        sam2 = uses_sam2(segmentation)
        uses_fastsam = segmentation.segmentation_model == "fastsam" or (
            segmentation.segmentation_model == "auto"
            and not sam2
            and weights_path(segmentation).is_file()
        )
        if deploy.memory_snapshot and sam2:
            warm_imports(SAM2_IMPORTS)
        elif deploy.memory_snapshot and uses_fastsam:
            warm_imports(FASTSAM_IMPORTS)
        return cls(settings=settings)

    def place(self) -> None:
        # FastSAM's weights are a few tens of MB: read onto the GPU in well under a second.
        self.loaded = build_segmenter(self.settings.segmentation)

    def app(self) -> FastAPI:
        return create_segmentation_app(self.settings.segmentation, loaded=self.loaded)
