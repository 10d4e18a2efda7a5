"""The diffusers Engine: which models exist, when they load, and what health reports.

Requests are resolved in prepare.py, models loaded by loading.py, calls run by
running.py; this class keeps the loaded models and the load errors between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from easel.core.errors import ServiceUnavailable
from easel.core.generation_api import GenerationRequest
from easel.core.paths import public_text
from easel.generation.engines.base import (
    CancelledFn,
    EngineCall,
    EngineCapabilities,
    EngineHealth,
    EngineOutput,
    ModelListing,
    Prepared,
    ProgressFn,
    WorkflowListing,
)
from easel.generation.engines.diffusers.families import FAMILIES
from easel.generation.engines.diffusers.hub import HubReach, ModelNotCached
from easel.generation.engines.diffusers.loading import (
    LoadedModel,
    LoadOptions,
    load_model,
    place,
)
from easel.generation.engines.diffusers.models import CATALOGUE, compile_sizes, offline_hint
from easel.generation.engines.diffusers.prepare import prepare
from easel.generation.engines.diffusers.running import run_call
from easel.generation.settings import GenerationSettings, ModelSpec

log = logging.getLogger("easel.generation.diffusers")

Loader = Callable[[str, ModelSpec, LoadOptions], LoadedModel]


class DiffusersEngine:
    """Configured diffusers pipelines, loaded once per process and run in a thread."""

    name = "diffusers"
    # Previews come from the latents of SD-family models (others' are None).
    capabilities = EngineCapabilities(previews=True)

    def __init__(
        self,
        *,
        models: dict[str, ModelSpec],
        default_model: str,
        options: LoadOptions,
        load: str = "startup",
        loader: Loader = load_model,
    ) -> None:
        self.models = models
        self.default_model = default_model
        self.options = options
        self.load_mode = load  # "startup": the default model loads as the service starts
        self.loader = loader  # blocking; run in a thread
        self.loaded: dict[str, LoadedModel] = {}
        self.loading: set[str] = set()
        self.errors: dict[str, str] = {}
        # Hub models found missing from the cache while the hub was unreachable: refused
        # at once while that verdict holds, rather than tried (and waited for) again.
        self.not_cached: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: asyncio.Task[Any] | None = None

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> DiffusersEngine:
        options = LoadOptions(
            models_path=settings.models_path,
            cache_dir=settings.data_dir / "models",
            device=settings.generation_device,
            cpu_offload=settings.generation_cpu_offload,
            vae_tiling=settings.generation_vae_tiling,
            compile_batch_sizes=compile_sizes(
                settings.generation_compile,
                settings.generation_compile_batch_sizes,
                settings.batch_max_images,
            ),
            hub=HubReach.from_hub_settings(
                timeout_s=settings.generation_hub_timeout,
                recheck_s=settings.generation_hub_recheck,
            ),
        )
        return cls(
            models={**CATALOGUE, **settings.generation_models},
            default_model=settings.generation_model,
            options=options,
            load=settings.generation_load,
        )

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.default_model not in self.models:
            self.errors[self.default_model] = (
                f"default model {self.default_model!r} is not configured; known: "
                f"{', '.join(sorted(self.models))}"
            )
            return
        if self.load_mode == "startup":
            # In the background: the service answers health (degraded: loading) meanwhile,
            # and requests wait for the model rather than fail.
            self._background = asyncio.create_task(self._quietly_load(self.default_model))

    async def _quietly_load(self, name: str) -> None:
        try:
            await self.ensure_loaded(name)
        except ServiceUnavailable:
            pass  # recorded in self.errors, reported by health

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
        self.loaded.clear()

    async def ensure_loaded(self, name: str) -> LoadedModel:
        if name in self.loaded:
            return self.loaded[name]
        self._refuse_known_missing(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            if name not in self.loaded:
                self._refuse_known_missing(name)  # found out by the load we waited for
                self.loaded[name] = await self._load(name)
        return self.loaded[name]

    def _refuse_known_missing(self, name: str) -> None:
        hub = self.options.hub
        if name in self.not_cached and hub is not None and hub.known_unreachable():
            raise ServiceUnavailable(self.errors[name])

    async def _load(self, name: str) -> LoadedModel:
        return await asyncio.to_thread(self._load_recorded, name, self.options)

    def load_now(self, *, staging: bool = False) -> None:
        """Load the default model in this thread, before the service starts (a Modal enter
        hook); `staging`: only read it into memory, for `place_staged` to finish. A
        failure is recorded, as a load in the service's lifespan would be: health says
        why, and requests are refused with it."""
        name = self.default_model
        if name not in self.models or name in self.loaded:
            return  # not configured: start() reports it
        with contextlib.suppress(ServiceUnavailable):
            options = dataclasses.replace(self.options, staging=staging)
            self.loaded[name] = self._load_recorded(name, options)

    def place_staged(self) -> None:
        """Finish the loads `load_now(staging=True)` began: weights onto their device."""
        for name, loaded in list(self.loaded.items()):
            if loaded.staged_for is None:
                continue
            try:
                place(loaded, self.options)
            except Exception as exc:
                del self.loaded[name]
                self._record_failure(name, exc)

    def _load_recorded(self, name: str, options: LoadOptions) -> LoadedModel:
        self.loading.add(name)
        try:
            loaded = self.loader(name, self.models[name], options)
        except ModelNotCached as exc:
            # Expected without a network: one line that says what to do, no traceback.
            self.errors[name] = str(exc)
            self.not_cached.add(name)
            log.error("%s", exc)
            raise ServiceUnavailable(self.errors[name]) from None
        except Exception as exc:
            self._record_failure(name, exc)
            raise ServiceUnavailable(self.errors[name]) from exc
        finally:
            self.loading.discard(name)
        self.errors.pop(name, None)
        self.not_cached.discard(name)
        return loaded

    def _record_failure(self, name: str, exc: Exception) -> None:
        log.error("loading model %s failed", name, exc_info=exc)
        # Health and the 503 show it: folders by name, not where they lie.
        shown = {
            "MODELS_PATH": self.options.models_path,
            "the model cache": self.options.cache_dir,
            "~": Path.home(),
        }
        reason = public_text(f"{type(exc).__name__}: {exc}", shown)
        self.errors[name] = f"{offline_hint(name)} ({reason})"

    # ---- requests ------------------------------------------------------------------------
    def prepare(
        self, request: GenerationRequest, input_size: tuple[int, int] | None = None
    ) -> Prepared:
        return prepare(request, self.models, self.default_model, input_size)

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        loaded = await self.ensure_loaded(call.key.model)
        return await asyncio.to_thread(run_call, loaded, call, progress, cancelled)

    def describe_workflows(self) -> WorkflowListing | None:
        return None  # models, not workflows

    def describe_models(self) -> ModelListing:
        return ModelListing(
            default_model=self.default_model,
            models=[
                {
                    "name": name,
                    "family": spec.family,
                    "description": spec.description,
                    "modes": [str(mode) for mode in FAMILIES[spec.family].pipelines],
                    "loaded": name in self.loaded,
                    "default": name == self.default_model,
                }
                for name, spec in sorted(self.models.items())
            ],
        )

    # ---- health --------------------------------------------------------------------------
    def health(self) -> EngineHealth:
        default = self.loaded.get(self.default_model)
        detail: dict[str, Any] = {
            "default_model": self.default_model,
            "models_loaded": sorted(self.loaded),
            "models_available": sorted(self.models),
            "load_mode": self.load_mode,
        }
        if default is not None:
            detail.update(
                device=default.device,
                dtype=default.dtype,
                family=default.spec.family,
                load_seconds=round(default.load_seconds, 3),
                description=default.spec.description,
            )
            if default.compiled is not None:
                detail["compile"] = default.compiled.report()
        error = self.errors.get(self.default_model)
        if self.default_model in self.loading:
            detail["state"] = "loading"
        elif default is None and error is None:
            detail["state"] = "loading" if self.load_mode == "startup" else "loads on first use"
        if self.loading:
            detail["models_loading"] = sorted(self.loading)
        return EngineHealth(
            ready=default is not None or (self.load_mode == "lazy" and error is None),
            detail=detail,
            error=error,
            gpu_available=default is not None and default.device == "cuda",
            loading=self.default_model in self.loading,
        )
