"""The engine interface: what the batcher and service need from any engine.

`prepare` validates a request against the engine's models (raising InvalidInput) and says
which requests may share a call; `generate` runs one call for one or many requests,
reporting progress per step and stopping at the next step once `cancelled()` is true.
What differs between engines and the app must know is asked, never inferred from the
engine's class: `capabilities`, and `describe_workflows` for `GET /api/workflows`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from easel.core.errors import InvalidInput
from easel.core.generation_api import MAX_SEED, GenerationRequest, Mode
from easel.generation.engines.encoded import OutputImage


@dataclass(frozen=True)
class ControlKey:
    """One ControlNet condition of a call, but its image (each request brings its own)."""

    type: str
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0


@dataclass(frozen=True)
class CallKey:
    """Requests with equal keys can run as one batched pipeline call: one model with one
    adapter set at the same weights, one scheduler, the same kinds of control."""

    model: str
    mode: Mode
    width: int
    height: int
    steps: int
    guidance_scale: float
    extra: tuple[tuple[str, Any], ...] = ()
    loras: tuple[tuple[str, float], ...] = ()  # (adapter name, weight), in request order
    scheduler: str | None = None  # None: the model's own
    control: tuple[ControlKey, ...] = ()
    shares: bool = True  # False: the pipeline takes one request per call (one prompt)


@dataclass(frozen=True)
class SeedRange:
    """The seeds a request may use (a ComfyUI workflow may declare fewer than the API's);
    image i of a request uses the i-th seed from its own, wrapping within the range."""

    low: int = 0
    high: int = MAX_SEED

    def draw(self) -> int:
        return random.randint(self.low, self.high)  # noqa: S311 - a seed, not a secret

    def check(self, seed: int | None, where: str) -> None:
        if seed is not None and not self.low <= seed <= self.high:
            raise InvalidInput.field("seed", f"{where} takes seeds {self.low} to {self.high}")

    def nth(self, seed: int, index: int) -> int:
        return self.low + (seed - self.low + index) % (self.high - self.low + 1)


@dataclass(frozen=True)
class Prepared:
    """A request resolved against its model: defaults applied, sizes rounded."""

    key: CallKey
    warnings: tuple[str, ...] = ()
    seeds: SeedRange = SeedRange()
    seeds_of: str = "this model"  # who declares `seeds`, to say so when refusing one


@dataclass
class EngineItem:
    """One request's share of a call."""

    prompt: str
    negative_prompt: str | None
    seed: int
    num_images: int
    input_image: Image.Image | None = None
    mask_image: Image.Image | None = None
    wants_preview_every: int | None = None
    # Several condition images (Qwen-Image-Edit-Plus), the first being `input_image`'s.
    input_images: list[Image.Image] = field(default_factory=list)
    # One per `CallKey.control`, in order; preprocessed already where asked.
    control_images: list[Image.Image] = field(default_factory=list)


def _never(index: int) -> bool:
    return False


@dataclass
class EngineCall:
    key: CallKey
    items: list[EngineItem]
    # Whether item `index`'s request alone was cancelled. Engines that run items as separate
    # jobs (ComfyUI: one prompt per image) stop just that item's; a pipeline call cannot.
    item_cancelled: Callable[[int], bool] = _never

    @property
    def num_images(self) -> int:
        return sum(item.num_images for item in self.items)


@dataclass
class EngineOutput:
    images: list[list[OutputImage]]  # per item, num_images each (pixels or encoded)
    steps_run: int
    interrupted: bool = False
    scheduler: str | None = None  # the one that ran, by name (the model's own too)


@dataclass(frozen=True)
class ItemProgress:
    """Where one item's request stands: its own step (1-based) of its own total."""

    step: int
    total: int
    preview: Image.Image | None = None


# Per item of the call, its progress, or None when it has none to report (not started,
# or no change). Safe to call from any thread: engines running a pipeline in a worker
# thread call it from there.
ProgressFn = Callable[[list[ItemProgress | None]], None]
CancelledFn = Callable[[], bool]


@dataclass
class EngineHealth:
    ready: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    gpu_available: bool = False
    loading: bool = False  # the default model is loading now


@dataclass(frozen=True)
class EngineCapabilities:
    """What the service and the app may rely on an engine for."""

    # The engine checks a request's prompt and images itself (ComfyUI: each workflow
    # declares the ones it needs), so the service's per-mode checks (a prompt for
    # text-to-image, an input image for edit, ...) are skipped: they would refuse
    # workflows that need none.
    validates_inputs: bool = False
    # A request's `model` names a workflow, listed by `describe_workflows`; the first
    # version's `POST /generate {workflow}` is then a workflow name, otherwise a mode.
    workflows: bool = False
    # Progress events can carry previews, so items ask for them (`wants_preview_every`).
    previews: bool = False
    # Calls the engine runs at once: 1 for a pipeline in this process (one GPU, one call);
    # more for a server with its own queue (ComfyUI), which then never idles between calls.
    concurrent_calls: int = 1


@dataclass(frozen=True)
class WorkflowListing:
    """The workflows a request may name, for `GET /api/workflows`."""

    workflows: list[dict[str, Any]]  # each one's description, sorted by name
    mode_workflows: dict[str, str]  # mode -> the workflow a request without `model` runs


@dataclass(frozen=True)
class ModelListing:
    """The models a request may name in `model`, for `GET /api/models`."""

    default_model: str | None
    # each one's {name, family, description, modes, loaded, default, ...}, sorted by name
    models: list[dict[str, Any]]
    # What loaded models may hold together and hold now; None: the engine keeps no budget.
    budget: dict[str, Any] | None = None


class Engine(Protocol):
    name: str
    capabilities: EngineCapabilities

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def prepare(
        self, request: GenerationRequest, input_size: tuple[int, int] | None = None
    ) -> Prepared: ...

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput: ...

    def health(self) -> EngineHealth: ...

    def describe_workflows(self) -> WorkflowListing | None:
        """The engine's workflows; None for an engine without any."""
        ...

    def describe_models(self) -> ModelListing:
        """What a request may name in `model`, and what is loaded."""
        ...

    def is_loaded(self, model: str) -> bool:
        """Whether a call on `model` runs without loading it first (the batcher says
        `loading` to its requests otherwise). True where the engine loads nothing itself."""
        ...

    async def load_model(self, name: str) -> dict[str, Any]:
        """Load `name` and return its `describe_models` entry; NotFound for an unknown
        name, Conflict where the engine does not manage models, ServiceUnavailable when
        the load fails."""
        ...

    async def unload_model(self, name: str) -> dict[str, Any]:
        """Unload `name`, freeing its memory; its entry after. Conflict while it is busy
        or where the engine does not manage models."""
        ...
