"""What the generation service can run: `GET /api/workflows`, `GET /api/models`, and
loading and unloading models under its memory budget."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from easel.core.openapi import error_responses
from easel.generation.container import Container

router = APIRouter(tags=["generation"])


class WorkflowList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "engine": "comfyui",
                    "workflows": [
                        {
                            "name": "text-to-image",
                            "description": "SD 1.5 text-to-image",
                            "source": "example",
                            "parameters": {
                                "steps": {
                                    "type": "int",
                                    "description": "Denoising steps.",
                                    "default": 20,
                                    "min": 1,
                                    "max": 150,
                                    "required": False,
                                    "targets": [{"node": "3", "input": "steps"}],
                                }
                            },
                        }
                    ],
                    "mode_workflows": {"text-to-image": "text-to-image"},
                }
            ]
        }
    )

    engine: str
    workflows: list[dict[str, Any]]
    mode_workflows: dict[str, str]


@router.get("/api/workflows", response_model=WorkflowList)
async def workflows(container: Container) -> WorkflowList:
    """The ComfyUI workflows a request may name in `model` (or reach through `mode`), each
    with its parameters: type, default, bounds and the node inputs they are written into.
    Empty with the diffusers engine."""
    listing = container.engine.describe_workflows()
    if listing is None:
        return WorkflowList(engine=container.engine.name, workflows=[], mode_workflows={})
    return WorkflowList(
        engine=container.engine.name,
        workflows=listing.workflows,
        mode_workflows=listing.mode_workflows,
    )


MODEL_EXAMPLE: dict[str, Any] = {
    "name": "sdxl",
    "family": "sdxl",
    "description": "Stable Diffusion XL 1.0",
    "modes": ["text-to-image", "edit", "inpaint"],
    "source": "stabilityai/stable-diffusion-xl-base-1.0",
    "loaded": True,
    "default": True,
    "state": "loaded",
    "error": None,
    "device": "cuda",
    "dtype": "float16",
    "memory_bytes": 6_938_040_236,
    "load_seconds": 7.812,
    "loras": [],
    "controlnets": [],
}


class ModelList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "engine": "diffusers",
                    "default_model": "sdxl",
                    "models": [MODEL_EXAMPLE],
                    "budget": {
                        "max_models": 1,
                        "memory_bytes": None,
                        "memory_gb": None,
                        "used_bytes": 6_938_040_236,
                        "on_unloaded": "load",
                    },
                }
            ]
        }
    )

    engine: str
    default_model: str | None
    models: list[dict[str, Any]]
    budget: dict[str, Any] | None = None


@router.get("/api/models", response_model=ModelList)
async def models(container: Container) -> ModelList:
    """The models a request may name in `model`: family, the modes each runs, its source
    (a hub id, a folder under MODELS_PATH, or a built-in), its `state` (loaded, loading,
    not loaded, failed with `error`), and once loaded its device, dtype, `memory_bytes`
    (its weights: parameters and buffers, shared components counted once) and
    `load_seconds`; which one a request without `model` gets; the LoRAs and ControlNets
    it can use. `budget`: what loaded models may hold together (EASEL_GENERATION_MAX_MODELS,
    EASEL_GENERATION_MEMORY_GB) and hold now. With ComfyUI, its workflows."""
    listing = container.engine.describe_models()
    return ModelList(
        engine=container.engine.name,
        default_model=listing.default_model,
        models=listing.models,
        budget=listing.budget,
    )


class ModelAnswer(BaseModel):
    """One model's entry of `GET /api/models`, with what the call did in `message`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{**MODEL_EXAMPLE, "message": "loaded in 7.812s"}]},
    )

    name: str
    state: str
    loaded: bool
    message: str


@router.post(
    "/api/models/{name}/load",
    response_model=ModelAnswer,
    responses=error_responses(404, 409, 503),
)
async def load_model(name: str, container: Container) -> ModelAnswer:
    """Load a model and wait for it: 200 with its entry once loaded (at once if it was).
    To stay within the budget, the least recently used idle models are unloaded first;
    503 with Retry-After when every other loaded model is running a call, or with the
    reason when the load fails; 404 for a name not configured. Needs the `admin` scope
    when API keys are on."""
    return ModelAnswer(**await container.engine.load_model(name))


@router.post(
    "/api/models/{name}/unload",
    response_model=ModelAnswer,
    responses=error_responses(404, 409),
)
async def unload_model(name: str, container: Container) -> ModelAnswer:
    """Unload a model and free its memory (its pipelines dropped, the GPU cache
    emptied). 409 while a call runs on it or it is loading: it is not waited for, so
    retry once it is idle. A model not loaded answers 200 saying so in `message`. Needs
    the `admin` scope when API keys are on."""
    return ModelAnswer(**await container.engine.unload_model(name))
