"""The generation service's settings: its engine and models, batching, request limits,
and the ComfyUI engine's part (`ComfyUISettings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from easel.core.settings import EaselSettingsBase, SharedSettings, env

ModelFamily = Literal["sd", "sdxl", "flux", "qwen-image", "qwen-image-edit", "qwen-image-edit-plus"]


class ModelSpec(BaseModel):
    """One generation model: where its weights are and how to run it."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="A hub id, or a folder (relative paths: under MODELS_PATH).")
    family: ModelFamily = "sd"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    variant: str | None = Field(None, description="Weights variant on the hub, e.g. fp16.")
    default_steps: int | None = Field(None, ge=1)
    default_guidance: float | None = Field(None, ge=0)
    default_size: int | None = Field(None, ge=64)
    condition_area: int | None = Field(
        None,
        ge=64 * 64,
        description="Qwen edit: pixels of each condition image (1024*1024; Edit-Plus 384*384 "
        "for the text encoder's view of them).",
    )
    description: str = ""


class ControlNetSpec(BaseModel):
    """One ControlNet: where its weights are, the model family it fits, the control types
    it takes (`control[i].type`)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="A hub id, or a folder (relative paths: under MODELS_PATH).")
    family: Literal["sd", "sdxl", "qwen-image"] = "sd"
    types: list[str] = Field(min_length=1, description="The control types it takes, e.g. canny.")
    # An SDXL ControlNet-Union (ControlNetUnionModel): one net for several types, each
    # call saying which by its `control_mode`.
    union: bool = False
    variant: str | None = Field(None, description="Weights variant on the hub, e.g. fp16.")
    description: str = ""


class LoraSpec(BaseModel):
    """One LoRA adapter beyond the files under MODELS_PATH/loras: a hub id (downloaded on
    first use) or a file or folder (relative paths: under MODELS_PATH)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="A hub id, or a .safetensors file or a folder holding one.")
    weight_name: str | None = Field(None, description="The file in a hub repo or folder.")
    family: ModelFamily | None = Field(
        None,
        description="The model family it was trained for; read from a local file's keys "
        "when absent (a hub adapter must say).",
    )


def _default_mode_workflows() -> dict[str, str]:
    return {"text-to-image": "text-to-image", "edit": "image-to-image", "inpaint": "inpaint"}


class ComfyUISettings(EaselSettingsBase):
    """The ComfyUI engine's part (EASEL_GENERATION_ENGINE=comfyui)."""

    # One ComfyUI server, or several, comma-separated: each call runs on the connected one
    # with the fewest of easel's calls (the first listed on a tie).
    comfyui_api_url: str = Field(
        "http://localhost:8188", validation_alias=env("COMFYUI_API_URL", "COMFYUI_API_URL")
    )
    workflows_path: Path = Field(
        Path("workflows"), validation_alias=env("WORKFLOWS_PATH", "WORKFLOWS_PATH")
    )
    # mode -> workflow name (a file in WORKFLOWS_PATH or a shipped example).
    comfyui_workflows: dict[str, str] = Field(
        default_factory=_default_mode_workflows, validation_alias=env("COMFYUI_WORKFLOWS")
    )
    comfyui_example_workflows: bool = Field(True, validation_alias=env("COMFYUI_EXAMPLE_WORKFLOWS"))
    # `${name}` in a workflow declaration's defaults -> a model file name on the ComfyUI
    # server; merged over the names the shipped examples use.
    comfyui_model_files: dict[str, str] = Field(
        default_factory=dict, validation_alias=env("COMFYUI_MODEL_FILES")
    )
    comfyui_timeout: float = Field(30.0, gt=0, validation_alias=env("COMFYUI_TIMEOUT"))
    # Per prompt: running counts from when ComfyUI starts it; waiting in its queue before
    # that (behind other prompts) has a bound of its own.
    comfyui_prompt_timeout: float = Field(
        600.0, gt=0, validation_alias=env("COMFYUI_PROMPT_TIMEOUT")
    )
    comfyui_queue_timeout: float = Field(600.0, gt=0, validation_alias=env("COMFYUI_QUEUE_TIMEOUT"))
    comfyui_poll_interval: float = Field(1.0, gt=0, validation_alias=env("COMFYUI_POLL_INTERVAL"))
    comfyui_reconnect_backoff: float = Field(
        0.5, gt=0, validation_alias=env("COMFYUI_RECONNECT_BACKOFF")
    )
    comfyui_reconnect_max: float = Field(10.0, gt=0, validation_alias=env("COMFYUI_RECONNECT_MAX"))
    # Calls (each one prompt per image) easel keeps in ComfyUI at once: requests that cannot
    # share a call do not wait for each other, and ComfyUI's queue holds the next prompt
    # when one ends, so it never idles between calls. 1: one call at a time.
    comfyui_max_queued: int = Field(3, ge=1, validation_alias=env("COMFYUI_MAX_QUEUED"))

    @field_validator("comfyui_api_url")
    @classmethod
    def _some_url(cls, value: str) -> str:
        if not value.replace(",", "").strip():
            raise ValueError("name at least one ComfyUI server")
        return value

    @property
    def comfyui_urls(self) -> list[str]:
        """`comfyui_api_url`'s servers, in order (the first is the one `easel up` starts)."""
        return [url.strip() for url in self.comfyui_api_url.split(",") if url.strip()]


class GenerationSettings(SharedSettings, ComfyUISettings):
    """Everything the generation service reads."""

    # Where `easel serve generation` listens: the first version's GPU service address.
    generation_host: str = Field(
        "127.0.0.1", validation_alias=env("GENERATION_HOST", "GPU_SERVER_HOST")
    )
    generation_port: int = Field(
        8001, ge=1, le=65535, validation_alias=env("GENERATION_PORT", "GPU_SERVER_PORT")
    )

    generation_engine: Literal["diffusers", "comfyui"] = Field(
        "diffusers", validation_alias=env("GENERATION_ENGINE", "GENERATION_ENGINE")
    )
    generation_model: str = Field("sd-turbo", validation_alias=env("GENERATION_MODEL"))
    generation_models: dict[str, ModelSpec] = Field(
        default_factory=dict, validation_alias=env("GENERATION_MODELS")
    )
    generation_device: Literal["auto", "cuda", "cpu", "mps"] = Field(
        "auto", validation_alias=env("GENERATION_DEVICE")
    )
    generation_load: Literal["startup", "lazy"] = Field(
        "startup", validation_alias=env("GENERATION_LOAD")
    )

    # --- models held in memory ----------------------------------------------------------
    # Models loaded at once; to load one more, the least recently used idle one is
    # unloaded. 1: a GPU sized for one model (SDXL on 16-24 GB, Qwen-Image-Edit on 80 GB)
    # does not run out of memory when a request names another model; the cost is a reload
    # when requests alternate between models. Raise it where several fit; 0: no count cap.
    generation_max_models: int = Field(1, ge=0, validation_alias=env("GENERATION_MAX_MODELS"))
    # The weights (parameters and buffers) all loaded models may hold together, in GB;
    # None: no memory cap. A model larger than the whole budget still loads, alone.
    generation_memory_gb: float | None = Field(
        None, gt=0, validation_alias=env("GENERATION_MEMORY_GB")
    )
    # A request for a model not loaded: `load` it (its stream says `loading`), or
    # `refuse` it with 409 naming `model` (only what POST /api/models/{name}/load loaded runs).
    generation_on_unloaded: Literal["load", "refuse"] = Field(
        "load", validation_alias=env("GENERATION_ON_UNLOADED")
    )
    # Seconds the one connect to the model hub may take to find out whether it is
    # reachable, and how long that verdict is kept (a missing model is refused at once
    # meanwhile).
    generation_hub_timeout: float = Field(3.0, gt=0, validation_alias=env("GENERATION_HUB_TIMEOUT"))
    generation_hub_recheck: float = Field(
        300.0, ge=0, validation_alias=env("GENERATION_HUB_RECHECK")
    )
    generation_cpu_offload: bool = Field(False, validation_alias=env("GENERATION_CPU_OFFLOAD"))
    generation_vae_tiling: bool = Field(False, validation_alias=env("GENERATION_VAE_TILING"))
    generation_compile: bool = Field(False, validation_alias=env("GENERATION_COMPILE"))
    generation_compile_batch_sizes: list[int] = Field(
        default_factory=list, validation_alias=env("GENERATION_COMPILE_BATCH_SIZES")
    )
    styles_file: Path | None = Field(None, validation_alias=env("STYLES_FILE"))

    # --- ControlNet -----------------------------------------------------------------------
    # name -> ControlNet, merged over the built-in hub defaults (control.py's catalogue); a
    # request's `control[i].type` picks among those of its model's family.
    generation_controlnets: dict[str, ControlNetSpec] = Field(
        default_factory=dict, validation_alias=env("GENERATION_CONTROLNETS")
    )
    # Controls of one request: each adds a ControlNet forward pass to every step.
    generation_max_controls: int = Field(3, ge=1, validation_alias=env("GENERATION_MAX_CONTROLS"))

    # --- LoRA adapters --------------------------------------------------------------------
    # name -> adapter, beside (and over) the .safetensors files under MODELS_PATH/loras; a
    # request's `loras[i].name` picks among those of its model's family.
    generation_loras: dict[str, LoraSpec] = Field(
        default_factory=dict, validation_alias=env("GENERATION_LORAS")
    )
    # Adapters of one request: each adds its low-rank product to every adapted layer.
    generation_max_loras: int = Field(4, ge=1, validation_alias=env("GENERATION_MAX_LORAS"))

    # --- batching and limits ------------------------------------------------------------
    # The most a batch waits, right after a call of its kind ended, for the requests that
    # call answered to come back (batching.py); a request finding the engine free never waits.
    batch_window_ms: float = Field(25.0, ge=0, validation_alias=env("BATCH_WINDOW_MS"))
    batch_max_images: int = Field(4, ge=1, validation_alias=env("BATCH_MAX_IMAGES"))
    generation_max_pending: int = Field(16, ge=1, validation_alias=env("GENERATION_MAX_PENDING"))
    max_num_images: int = Field(4, ge=1, validation_alias=env("MAX_NUM_IMAGES"))
    max_steps: int = Field(150, ge=1, validation_alias=env("MAX_STEPS"))
    max_side: int = Field(2048, ge=64, validation_alias=env("MAX_SIDE"))
    # Condition images of one request (Qwen-Image-Edit-Plus reads them all; each costs a
    # VAE encode and its share of the transformer's sequence).
    max_input_images: int = Field(4, ge=1, validation_alias=env("MAX_INPUT_IMAGES"))
