"""The generation service's settings: its engine and models, batching, request limits,
and the ComfyUI engine's part (`ComfyUISettings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from easel.core.settings import EaselSettingsBase, SharedSettings, env

ModelFamily = Literal["sd", "sdxl", "flux", "qwen-image", "qwen-image-edit"]


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
        None, ge=64 * 64, description="Qwen edit: pixels of the condition image (1024*1024)."
    )
    description: str = ""


def _default_mode_workflows() -> dict[str, str]:
    return {"text-to-image": "text-to-image", "edit": "image-to-image", "inpaint": "inpaint"}


class ComfyUISettings(EaselSettingsBase):
    """The ComfyUI engine's part (EASEL_GENERATION_ENGINE=comfyui)."""

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
    comfyui_prompt_timeout: float = Field(
        600.0, gt=0, validation_alias=env("COMFYUI_PROMPT_TIMEOUT")
    )
    comfyui_poll_interval: float = Field(1.0, gt=0, validation_alias=env("COMFYUI_POLL_INTERVAL"))
    comfyui_reconnect_backoff: float = Field(
        0.5, gt=0, validation_alias=env("COMFYUI_RECONNECT_BACKOFF")
    )
    comfyui_reconnect_max: float = Field(10.0, gt=0, validation_alias=env("COMFYUI_RECONNECT_MAX"))


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

    # --- batching and limits ------------------------------------------------------------
    batch_window_ms: float = Field(25.0, ge=0, validation_alias=env("BATCH_WINDOW_MS"))
    batch_max_images: int = Field(4, ge=1, validation_alias=env("BATCH_MAX_IMAGES"))
    generation_max_pending: int = Field(16, ge=1, validation_alias=env("GENERATION_MAX_PENDING"))
    max_num_images: int = Field(4, ge=1, validation_alias=env("MAX_NUM_IMAGES"))
    max_steps: int = Field(150, ge=1, validation_alias=env("MAX_STEPS"))
    max_side: int = Field(2048, ge=64, validation_alias=env("MAX_SIDE"))
