"""easel's way, through the code that ships: clients -> GenerationService -> Batcher ->
DiffusersEngine -> the pipeline this benchmark built.

The engine is handed the built pipeline by its loader (instead of reading weights), so
each request goes the way a server's does: resolved and keyed by the engine's `prepare`,
gathered by the real `Batcher` (continuous batching, the batch window only as an upper
bound), run by the engine's `run_call` in a thread (its call arguments, one CPU generator
per image, its step callback), and, when compiling, compiled by the engine's own start-up
warm-up (`warm_compiled`: one warm-up call per configured batch size at the model's default
size; a call of a shape not warmed runs eager, as on a server). What is timed ends with the
batcher's answer: the images are not encoded (plain's are not either, and random weights
make noise, which no real image compresses like).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from easel.core.generation_api import GenerationRequest
from easel.core.image_links import ImageLinks
from easel.core.image_store import ImageStore
from easel.core.images import ImageCodec
from easel.generation.batching import Batcher
from easel.generation.engines.diffusers.engine import DiffusersEngine
from easel.generation.engines.diffusers.families import FAMILIES
from easel.generation.engines.diffusers.loading import LoadedModel, LoadOptions, warm_compiled
from easel.generation.outputs import ImageOutputs
from easel.generation.service import GenerationService, Limits
from easel.generation.settings import ModelSpec
from easel.generation.styles import Styles

MODEL = "bench"


@dataclass
class LoopResult:
    images: int = 0
    seconds: float = 0.0
    calls: int = 0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    @property
    def p50_s(self) -> float:
        return statistics.median(self.latencies_s) if self.latencies_s else float("nan")

    @property
    def mean_batch(self) -> float:
        return self.images / self.calls if self.calls else float("nan")


def engine_for(
    pipe: Any,
    spec: ModelSpec,
    *,
    device: str,
    dtype: str,
    cache_dir: Path,
    compile_sizes: Sequence[int] = (),
) -> DiffusersEngine:
    """A DiffusersEngine serving `pipe` as model MODEL; compiled for `compile_sizes` (batch
    sizes, as EASEL_GENERATION_COMPILE_BATCH_SIZES) when given."""
    family = FAMILIES[spec.family]
    options = LoadOptions(
        models_path=cache_dir, cache_dir=cache_dir, device=device,
        compile_batch_sizes=tuple(compile_sizes),
    )  # fmt: skip

    def hand_over(name: str, spec: ModelSpec, options: LoadOptions) -> LoadedModel:
        first_mode = next(iter(family.pipelines))
        loaded = LoadedModel(
            name=name, spec=spec, family=family, base=pipe, device=device, dtype=dtype,
            load_seconds=0.0, by_mode={first_mode: pipe},
        )  # fmt: skip
        if options.compile_batch_sizes:
            warm_compiled(loaded, first_mode, options)  # what `place` does when compiling
        return loaded

    return DiffusersEngine(
        models={MODEL: spec}, default_model=MODEL, options=options, load="lazy", loader=hand_over
    )


class Serving:
    """The generation service over `engine`, its batcher allowing `max_batch` images a call."""

    def __init__(self, engine: DiffusersEngine, *, max_batch: int, window_s: float) -> None:
        self.engine = engine
        self.batcher = Batcher(
            engine=engine, window_s=window_s, max_batch_images=max_batch, max_pending=10_000
        )
        codec = ImageCodec(max_bytes=1 << 30, max_pixels=1 << 30)
        self.service = GenerationService(
            engine=engine,
            batcher=self.batcher,
            codec=codec,
            styles=Styles({}),
            limits=Limits(max_num_images=max_batch, max_steps=10_000, max_side=1 << 14),
            outputs=ImageOutputs(
                codec=codec, store=ImageStore(Path("unused")), links=ImageLinks(secret=None)
            ),
        )

    async def generate(self, request: GenerationRequest) -> int:
        """One request, as a client of the service sends it; the images it got back."""
        submission = await self.service.submit(request, request_id=None, listening=False)
        outcome = await submission.ticket.outcome
        if outcome.error is not None:
            raise outcome.error
        return len(outcome.images or [])


def closed_loop(
    engine: DiffusersEngine,
    make_request: Callable[[int], GenerationRequest],
    *,
    clients: int,
    requests: int,
    max_batch: int,
    window_s: float,
    warmup: GenerationRequest | None = None,
) -> LoopResult:
    """`clients` concurrent clients each send a request and wait for its images, until
    `requests` have been answered; `warmup` first, `clients` of it at once (not timed)."""

    async def run() -> LoopResult:
        serving = Serving(engine, max_batch=max_batch, window_s=window_s)
        dispatcher = asyncio.create_task(serving.batcher.run())
        try:
            return await _timed(serving, make_request, clients, requests, warmup)
        finally:
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)

    return asyncio.run(run())


async def _timed(
    serving: Serving,
    make_request: Callable[[int], GenerationRequest],
    clients: int,
    requests: int,
    warmup: GenerationRequest | None,
) -> LoopResult:
    await serving.engine.ensure_loaded(MODEL)  # loads (and compiles) before the clock
    if warmup is not None:
        await asyncio.gather(*(serving.generate(warmup) for _ in range(clients)))
    result, issued = LoopResult(), iter(range(requests))
    calls_before = serving.batcher.calls

    async def client() -> None:
        for index in issued:  # shared: each request index goes to one client
            sent = time.perf_counter()
            images = await serving.generate(make_request(index))
            result.images += images  # not `+= await`: that reads the sum before the wait
            result.latencies_s.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    result.calls = serving.batcher.calls - calls_before
    return result
