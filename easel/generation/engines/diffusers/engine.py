"""The diffusers Engine: which models exist, when they load and unload, and what health
reports.

Requests are resolved in prepare.py, models loaded by loading.py, calls run by
running.py, the memory budget kept by residency.py; this class keeps the loaded models and
the load errors between them. One load runs at a time: room is made for it (idle models
unloaded, least recently used first) before its weights are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from easel.core.errors import Conflict, NotFound, ServiceUnavailable
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
from easel.generation.engines.diffusers.adapters import AdapterCatalogue
from easel.generation.engines.diffusers.control import ControlNets
from easel.generation.engines.diffusers.health import engine_health
from easel.generation.engines.diffusers.hub import HubReach, ModelNotCached
from easel.generation.engines.diffusers.listing import model_entry
from easel.generation.engines.diffusers.loading import (
    LoadedModel,
    LoadOptions,
    load_model,
    place,
)
from easel.generation.engines.diffusers.models import compile_sizes, offline_hint
from easel.generation.engines.diffusers.prepare import prepare
from easel.generation.engines.diffusers.residency import (
    Budget,
    Residency,
    release,
    weights_bytes,
)
from easel.generation.engines.diffusers.running import run_call
from easel.generation.engines.diffusers.schedulers import schedulers_of
from easel.generation.pulled import configured_models
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
        budget: Budget | None = None,
        on_unloaded: str = "load",
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
        self.residency = Residency(budget or Budget())
        self.on_unloaded = on_unloaded  # "load" or "refuse" a request for a model not loaded
        self.sizes: dict[str, int] = {}  # bytes of each model's weights, as last measured
        # What each was holding when measured: counting every tensor of a large model takes
        # milliseconds, on the event loop, so a call that added nothing is not recounted.
        self._measured: dict[str, tuple[Any, ...]] = {}
        self.ever_loaded: set[str] = set()
        # One load at a time: making room and loading are one step, so two loads never
        # both count on the room one eviction made.
        self._load_lock = asyncio.Lock()
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
            controlnets=ControlNets.from_settings(settings),
            adapters=AdapterCatalogue(
                settings.models_path, settings.generation_loras, settings.generation_max_loras
            ),
        )
        return cls(
            models=configured_models(settings),
            default_model=settings.generation_model,
            options=options,
            load=settings.generation_load,
            budget=Budget.from_settings(
                settings.generation_max_models, settings.generation_memory_gb
            ),
            on_unloaded=settings.generation_on_unloaded,
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
            # and requests wait for the model rather than fail. Loading from now on, not
            # from when the task first runs: a health check may come before that.
            self.loading.add(self.default_model)
            self._background = asyncio.create_task(self._quietly_load(self.default_model))

    async def _quietly_load(self, name: str) -> None:
        try:
            await self.ensure_loaded(name)
        except ServiceUnavailable:
            pass  # recorded in self.errors, reported by health
        finally:
            self.loading.discard(name)  # loaded or failed (the load itself marks it too)

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
        self.loaded.clear()

    async def ensure_loaded(self, name: str) -> LoadedModel:
        if name in self.loaded:
            return self.loaded[name]
        self._refuse_known_missing(name)
        async with self._load_lock:
            if name not in self.loaded:
                self._refuse_known_missing(name)  # found out by the load we waited for
                await self._make_room(name)
                self.loaded[name] = await self._load(name)
                for device in self._loaded_now(name):
                    await asyncio.to_thread(release, device)
        return self.loaded[name]

    async def _make_room(self, name: str) -> None:
        """Unload idle models until one more fits; 503 (retry soon) when the others are
        all running calls. The incoming model's size is known from an earlier load."""
        others = {other: self.sizes.get(other, 0) for other in self.loaded}
        room = self.residency.room_for(others, self.sizes.get(name))
        for victim in room.evict:
            await self._unload(victim, why=f"to make room for {name}")
        if not room.fits:
            raise ServiceUnavailable(
                f"cannot load model {name!r}: the model budget is full and every loaded "
                f"model is running a call ({', '.join(room.busy)}); retry once one is idle",
                details={"model": name, "busy": room.busy, **self.residency.budget.describe()},
                headers={"Retry-After": "5"},
            )

    def _loaded_now(self, name: str) -> set[str]:
        """Measure what the load holds, then (a first load's size was not known before)
        unload idle models until the memory budget holds again; the devices of those
        unloaded, for `release`."""
        self.ever_loaded.add(name)
        self.residency.touch(name)
        self._measure(name)
        others = {other: self.sizes.get(other, 0) for other in self.loaded if other != name}
        room = self.residency.room_for(others, self.sizes[name])
        dropped = [self._drop(victim, why=f"to make room for {name}") for victim in room.evict]
        if not room.fits:
            log.warning(
                "model %s is loaded beyond the memory budget: %s are running calls",
                name,
                ", ".join(room.busy),
            )
        return {loaded.device for loaded in dropped if loaded is not None}

    def _measure(self, name: str) -> None:
        loaded = self.loaded[name]
        holdings = loaded.holdings()
        # Pipelines and ControlNets are new objects when added; LoRAs live inside the
        # denoiser's modules, so the loaded adapters count too.
        held = (id(loaded), *map(id, holdings), *sorted(loaded.tuning.adapters))
        if self._measured.get(name) != held or name not in self.sizes:
            self.sizes[name] = weights_bytes(holdings)
            self._measured[name] = held

    def _drop(self, name: str, *, why: str) -> LoadedModel | None:
        loaded = self.loaded.pop(name, None)
        if loaded is not None:
            log.info("unloaded model %s (%s)", name, why)
        return loaded

    async def _unload(self, name: str, *, why: str) -> bool:
        loaded = self._drop(name, why=why)
        if loaded is None:
            return False
        device = loaded.device
        del loaded  # the last reference this engine held: `release` collects it
        await asyncio.to_thread(release, device)
        return True

    def _refuse_known_missing(self, name: str) -> None:
        hub = self.options.hub
        if name in self.not_cached and hub is not None and hub.known_unreachable():
            raise ServiceUnavailable(self.errors[name])

    async def _load(self, name: str) -> LoadedModel:
        return await asyncio.to_thread(self._load_recorded, name, self.options)

    def is_loaded(self, model: str) -> bool:
        return model in self.loaded

    async def load_model(self, name: str) -> dict[str, Any]:
        """Load `name` (under the budget, as a request would) and describe it."""
        self._known(name)
        was_loaded = name in self.loaded
        await self.ensure_loaded(name)
        entry = self._entry(name)
        seconds = entry["load_seconds"]
        entry["message"] = "already loaded" if was_loaded else f"loaded in {seconds}s"
        return entry

    async def unload_model(self, name: str) -> dict[str, Any]:
        """Unload `name` and free its memory; 409 while a call runs on it or it loads."""
        self._known(name)
        if self.residency.is_busy(name) or name in self.loading:
            doing = "loading" if name in self.loading else "running a call"
            raise Conflict(
                f"model {name!r} is {doing}; unload it once it is idle",
                details={"model": name},
            )
        unloaded = await self._unload(name, why="asked to")
        entry = self._entry(name)
        entry["message"] = "unloaded" if unloaded else "was not loaded"
        return entry

    def _known(self, name: str) -> None:
        if name not in self.models:
            raise NotFound(
                f"no model {name!r}; known: {', '.join(sorted(self.models))}",
                details={"model": name},
            )

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
            for device in self._loaded_now(name):
                release(device)

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
            self.errors.pop(name, None)
            self.not_cached.discard(name)
            # Loaded before it stops being loading: health never sees it as neither.
            self.loaded[name] = loaded
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
        return loaded

    def _record_failure(self, name: str, exc: Exception) -> None:
        log.error("loading model %s failed", name, exc_info=exc)
        # Health and the 503 show it: folders by name, not where they lie.
        reason = public_text(f"{type(exc).__name__}: {exc}", self._folders())
        self.errors[name] = f"{offline_hint(name)} ({reason})"

    # ---- requests ------------------------------------------------------------------------
    def prepare(
        self, request: GenerationRequest, input_size: tuple[int, int] | None = None
    ) -> Prepared:
        prepared = prepare(
            request,
            self.models,
            self.default_model,
            input_size,
            self.options.controlnets,
            adapters=self.options.adapters,
        )
        self._refuse_unloaded(prepared.key.model)
        return prepared

    def _refuse_unloaded(self, name: str) -> None:
        """EASEL_GENERATION_ON_UNLOADED=refuse: only loaded (or loading) models run."""
        if self.on_unloaded == "refuse" and name not in self.loaded and name not in self.loading:
            raise Conflict(
                f"model {name!r} is not loaded, and this service does not load models for "
                f"requests; load it with POST /api/models/{name}/load",
                details={"field": "model", "model": name},
            )

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        name = call.key.model
        with self.residency.in_use(name):
            self._refuse_unloaded(name)  # unloaded since it was admitted
            loaded = await self.ensure_loaded(name)
            try:
                return await asyncio.to_thread(
                    run_call, loaded, call, progress, cancelled, adapters=self.options.adapters
                )
            finally:
                if self.loaded.get(name) is loaded:
                    self._measure(name)  # a call may add pipelines, adapters, ControlNets

    def describe_workflows(self) -> WorkflowListing | None:
        return None  # models, not workflows

    def describe_models(self) -> ModelListing:
        budget = self.residency.budget.describe()
        budget["used_bytes"] = sum(self.sizes.get(name, 0) for name in self.loaded)
        return ModelListing(
            default_model=self.default_model,
            models=[self._entry(name) for name in sorted(self.models)],
            budget={**budget, "on_unloaded": self.on_unloaded},
        )

    def _entry(self, name: str) -> dict[str, Any]:
        loaded = self.loaded.get(name)
        entry = model_entry(
            name,
            self.models[name],
            folders=self._folders(),
            default=name == self.default_model,
            loaded=loaded,
            loading=name in self.loading,
            error=self.errors.get(name),
            memory_bytes=self.sizes.get(name) if loaded is not None else None,
        )
        family = self.models[name].family
        entry["loras"] = self.options.adapters.for_family(family)
        entry["schedulers"] = [*schedulers_of(family)]
        entry["controlnets"] = self.options.controlnets.describe(
            self.models[name].family, self._folders()
        )
        return entry

    def _folders(self) -> dict[str, Path]:
        return {
            "MODELS_PATH": self.options.models_path,
            "the model cache": self.options.cache_dir,
            "~": Path.home(),
        }

    # ---- health --------------------------------------------------------------------------
    def health(self) -> EngineHealth:
        return engine_health(self)
