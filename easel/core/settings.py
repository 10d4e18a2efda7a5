"""All configuration, read from the environment and an optional `.env` file.

Every value has a documented default (see README, "Settings"). New names carry the
`EASEL_` prefix; the names of the first deployments keep working through aliases.
This is the only module that reads the environment.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICE_NAMES = ("generation", "segmentation", "image_utils", "job_manager")


class HealthMode(StrEnum):
    """How the gateway learns a service's health."""

    ACTIVE = "active"  # probe GET /api/health
    PASSIVE = "passive"  # infer from recent real traffic; never wakes a scaled-to-zero service


def _env(name: str, *legacy: str) -> AliasChoices:
    return AliasChoices(f"EASEL_{name}", *legacy)


class ServiceEndpoint:
    """Where and how the gateway reaches one service (a view over Settings)."""

    def __init__(
        self,
        name: str,
        url: str | None,
        health_mode: HealthMode,
        timeout: float,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/") if url else None
        self.health_mode = health_mode
        self.timeout = timeout

    @property
    def in_process(self) -> bool:
        return self.url is None


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


class Settings(BaseSettings):
    """easel's settings. Field docs are the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix="EASEL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- identity -------------------------------------------------------------------
    api_title: str = Field("easel", validation_alias=_env("API_TITLE", "API_TITLE"))
    api_version: str = Field("", validation_alias=_env("API_VERSION", "API_VERSION"))

    # --- where things run ---------------------------------------------------------------
    host: str = Field("127.0.0.1", validation_alias=_env("HOST", "BACKEND_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT", "BACKEND_PORT"))
    generation_host: str = Field(
        "127.0.0.1", validation_alias=_env("GENERATION_HOST", "GPU_SERVER_HOST")
    )
    generation_port: int = Field(
        8001, ge=1, le=65535, validation_alias=_env("GENERATION_PORT", "GPU_SERVER_PORT")
    )
    data_dir: Path = Field(Path("data"), validation_alias=_env("DATA_DIR"))
    models_path: Path = Field(Path("models"), validation_alias=_env("MODELS_PATH", "MODELS_PATH"))
    workflows_path: Path = Field(
        Path("workflows"), validation_alias=_env("WORKFLOWS_PATH", "WORKFLOWS_PATH")
    )

    # --- service URLs: unset means "run that service in-process" -------------------
    generation_url: str | None = Field(
        None,
        validation_alias=_env("GENERATION_URL", "GENERATION_SERVICE_URL", "GPU_SERVICE_URL"),
    )
    segmentation_url: str | None = Field(
        None, validation_alias=_env("SEGMENTATION_URL", "SEGMENTATION_SERVICE_URL")
    )
    image_utils_url: str | None = Field(
        None, validation_alias=_env("IMAGE_UTILS_URL", "IMAGE_UTILS_SERVICE_URL")
    )
    job_manager_url: str | None = Field(
        None, validation_alias=_env("JOB_MANAGER_URL", "JOB_MANAGER_SERVICE_URL")
    )
    comfyui_api_url: str = Field(
        "http://localhost:8188", validation_alias=_env("COMFYUI_API_URL", "COMFYUI_API_URL")
    )

    # --- gateway -> service calls ----------------------------------------------------
    request_timeout: float = Field(
        300.0, gt=0, validation_alias=_env("REQUEST_TIMEOUT", "REQUEST_TIMEOUT")
    )
    connect_timeout: float = Field(5.0, gt=0, validation_alias=_env("CONNECT_TIMEOUT"))
    generation_timeout: float | None = Field(None, gt=0)
    segmentation_timeout: float | None = Field(None, gt=0)
    image_utils_timeout: float | None = Field(None, gt=0)
    job_manager_timeout: float | None = Field(None, gt=0)
    max_connections: int = Field(200, ge=1, validation_alias=_env("MAX_CONNECTIONS"))
    upstream_client: Literal["httpx", "aiohttp"] = Field(
        "aiohttp", validation_alias=_env("UPSTREAM_CLIENT")
    )

    # --- health ------------------------------------------------------------------------
    health_timeout: float = Field(2.0, gt=0, validation_alias=_env("HEALTH_TIMEOUT"))
    passive_health_window: float = Field(
        300.0, gt=0, validation_alias=_env("PASSIVE_HEALTH_WINDOW")
    )
    generation_health_mode: HealthMode = HealthMode.ACTIVE
    segmentation_health_mode: HealthMode = HealthMode.ACTIVE
    image_utils_health_mode: HealthMode = HealthMode.ACTIVE
    job_manager_health_mode: HealthMode = HealthMode.ACTIVE

    # --- HTTP edge -----------------------------------------------------------------------
    cors_origins: list[str] = Field(default_factory=list, validation_alias=_env("CORS_ORIGINS"))
    max_body_mb: float = Field(64.0, gt=0, validation_alias=_env("MAX_BODY_MB"))
    frame_ancestors: str = Field("'none'", validation_alias=_env("FRAME_ANCESTORS"))

    # --- images ------------------------------------------------------------------------
    max_image_size_mb: float = Field(
        20.0, gt=0, validation_alias=_env("MAX_IMAGE_SIZE_MB", "MAX_IMAGE_SIZE_MB")
    )
    max_image_pixels: int = Field(40_000_000, ge=1, validation_alias=_env("MAX_IMAGE_PIXELS"))
    png_compress_level: int = Field(1, ge=0, le=9, validation_alias=_env("PNG_COMPRESS_LEVEL"))
    default_quality: int = Field(90, ge=1, le=100, validation_alias=_env("DEFAULT_QUALITY"))

    # --- generation ------------------------------------------------------------------
    generation_engine: Literal["diffusers", "comfyui"] = Field(
        "diffusers", validation_alias=_env("GENERATION_ENGINE", "GENERATION_ENGINE")
    )
    generation_model: str = Field("sd-turbo", validation_alias=_env("GENERATION_MODEL"))
    generation_models: dict[str, ModelSpec] = Field(
        default_factory=dict, validation_alias=_env("GENERATION_MODELS")
    )
    generation_device: Literal["auto", "cuda", "cpu", "mps"] = Field(
        "auto", validation_alias=_env("GENERATION_DEVICE")
    )
    generation_load: Literal["startup", "lazy"] = Field(
        "startup", validation_alias=_env("GENERATION_LOAD")
    )
    generation_cpu_offload: bool = Field(False, validation_alias=_env("GENERATION_CPU_OFFLOAD"))
    generation_vae_tiling: bool = Field(False, validation_alias=_env("GENERATION_VAE_TILING"))
    generation_compile: bool = Field(False, validation_alias=_env("GENERATION_COMPILE"))
    generation_compile_batch_sizes: list[int] = Field(
        default_factory=list, validation_alias=_env("GENERATION_COMPILE_BATCH_SIZES")
    )
    styles_file: Path | None = Field(None, validation_alias=_env("STYLES_FILE"))
    batch_window_ms: float = Field(25.0, ge=0, validation_alias=_env("BATCH_WINDOW_MS"))
    batch_max_images: int = Field(4, ge=1, validation_alias=_env("BATCH_MAX_IMAGES"))
    generation_max_pending: int = Field(16, ge=1, validation_alias=_env("GENERATION_MAX_PENDING"))
    max_num_images: int = Field(4, ge=1, validation_alias=_env("MAX_NUM_IMAGES"))
    max_steps: int = Field(150, ge=1, validation_alias=_env("MAX_STEPS"))
    max_side: int = Field(2048, ge=64, validation_alias=_env("MAX_SIDE"))

    # --- segmentation ------------------------------------------------------------------
    segmentation_model: Literal["auto", "fastsam", "grabcut"] = Field(
        "auto", validation_alias=_env("SEGMENTATION_MODEL", "SEGMENTATION_MODEL")
    )
    # Relative paths are under MODELS_PATH.
    fastsam_weights: Path = Field(
        Path("FastSAM-s.pt"), validation_alias=_env("FASTSAM_WEIGHTS", "FASTSAM_WEIGHTS")
    )
    segmentation_device: Literal["auto", "cuda", "cpu", "mps"] = Field(
        "auto", validation_alias=_env("SEGMENTATION_DEVICE")
    )
    fastsam_imgsz: int = Field(1024, ge=32, le=4096, validation_alias=_env("FASTSAM_IMGSZ"))
    fastsam_conf: float = Field(0.4, ge=0, le=1, validation_alias=_env("FASTSAM_CONF"))
    fastsam_iou: float = Field(0.9, ge=0, le=1, validation_alias=_env("FASTSAM_IOU"))
    fastsam_max_det: int = Field(100, ge=1, le=1000, validation_alias=_env("FASTSAM_MAX_DET"))
    segmentation_working_size: int = Field(
        512, ge=64, le=4096, validation_alias=_env("SEGMENTATION_WORKING_SIZE")
    )
    segmentation_coarse_size: int = Field(
        160, ge=32, le=1024, validation_alias=_env("SEGMENTATION_COARSE_SIZE")
    )
    segmentation_max_masks: int = Field(
        5, ge=1, le=32, validation_alias=_env("SEGMENTATION_MAX_MASKS")
    )
    segmentation_max_points: int = Field(
        64, ge=1, le=10_000, validation_alias=_env("SEGMENTATION_MAX_POINTS")
    )
    segmentation_cache_size: int = Field(
        8, ge=0, le=1024, validation_alias=_env("SEGMENTATION_CACHE_SIZE")
    )

    # --- ComfyUI engine (GENERATION_ENGINE=comfyui) ------------------------------------
    # mode -> workflow name (a file in WORKFLOWS_PATH or a shipped example).
    comfyui_workflows: dict[str, str] = Field(
        default_factory=lambda: {
            "text-to-image": "text-to-image",
            "edit": "image-to-image",
            "inpaint": "inpaint",
        },
        validation_alias=_env("COMFYUI_WORKFLOWS"),
    )
    comfyui_example_workflows: bool = Field(
        True, validation_alias=_env("COMFYUI_EXAMPLE_WORKFLOWS")
    )
    # `${name}` in a workflow declaration's defaults -> a model file name on the ComfyUI
    # server; merged over the names the shipped examples use.
    comfyui_model_files: dict[str, str] = Field(
        default_factory=dict, validation_alias=_env("COMFYUI_MODEL_FILES")
    )
    comfyui_timeout: float = Field(30.0, gt=0, validation_alias=_env("COMFYUI_TIMEOUT"))
    comfyui_prompt_timeout: float = Field(
        600.0, gt=0, validation_alias=_env("COMFYUI_PROMPT_TIMEOUT")
    )
    comfyui_poll_interval: float = Field(1.0, gt=0, validation_alias=_env("COMFYUI_POLL_INTERVAL"))
    comfyui_reconnect_backoff: float = Field(
        0.5, gt=0, validation_alias=_env("COMFYUI_RECONNECT_BACKOFF")
    )
    comfyui_reconnect_max: float = Field(10.0, gt=0, validation_alias=_env("COMFYUI_RECONNECT_MAX"))

    # --- jobs ------------------------------------------------------------------------
    jobs_backend: Literal["sqlite", "redis"] = Field(
        "sqlite", validation_alias=_env("JOBS_BACKEND")
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=_env("REDIS_URL", "REDIS_URL")
    )
    jobs_max_queued: int = Field(1000, ge=1, validation_alias=_env("JOBS_MAX_QUEUED"))
    jobs_max_attempts: int = Field(3, ge=1, validation_alias=_env("JOBS_MAX_ATTEMPTS"))
    jobs_timeout: float = Field(600.0, gt=0, validation_alias=_env("JOBS_TIMEOUT"))
    jobs_retention: float = Field(7 * 86400.0, gt=0, validation_alias=_env("JOBS_RETENTION"))
    # Workers write result images here and job managers serve them: with workers on other
    # machines it must be storage they share (a network or cloud volume).
    results_dir: Path | None = Field(None, validation_alias=_env("RESULTS_DIR"))
    jobs_heartbeat: float = Field(2.0, gt=0, validation_alias=_env("JOBS_HEARTBEAT"))
    jobs_visibility_timeout: float = Field(
        30.0, gt=0, validation_alias=_env("JOBS_VISIBILITY_TIMEOUT")
    )
    jobs_retry_backoff: float = Field(2.0, ge=0, validation_alias=_env("JOBS_RETRY_BACKOFF"))
    worker_concurrency: int = Field(1, ge=1, validation_alias=_env("WORKER_CONCURRENCY"))
    worker_poll_interval: float = Field(0.01, ge=0, validation_alias=_env("WORKER_POLL_INTERVAL"))
    jobs_in_process_worker: bool = Field(True, validation_alias=_env("JOBS_IN_PROCESS_WORKER"))

    # --- webhooks ----------------------------------------------------------------------
    # `whsec_` + base64 key (Standard Webhooks), or any string; unset: jobs with a webhook
    # are refused.
    webhook_secret: SecretStr | None = Field(None, validation_alias=_env("WEBHOOK_SECRET"))
    webhook_allow_private: bool = Field(False, validation_alias=_env("WEBHOOK_ALLOW_PRIVATE"))
    webhook_max_attempts: int = Field(5, ge=1, validation_alias=_env("WEBHOOK_MAX_ATTEMPTS"))
    webhook_backoff: float = Field(1.0, ge=0, validation_alias=_env("WEBHOOK_BACKOFF"))
    webhook_timeout: float = Field(10.0, gt=0, validation_alias=_env("WEBHOOK_TIMEOUT"))

    # --- pod: `easel up | down | status | logs` -------------------------------------
    run_dir: Path = Field(Path("run"), validation_alias=_env("RUN_DIR"))
    # Comma-separated cli or settings names (gateway, generation, image-utils, jobs...).
    pod_services: Annotated[tuple[str, ...], NoDecode] = Field(
        ("all",), validation_alias=_env("POD_SERVICES")
    )
    pod_ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=dict, validation_alias=_env("POD_PORTS")
    )
    pod_workers: int = Field(0, ge=0, validation_alias=_env("POD_WORKERS"))
    pod_start_timeout: float = Field(120.0, gt=0, validation_alias=_env("POD_START_TIMEOUT"))
    pod_stop_grace: float = Field(20.0, ge=0, validation_alias=_env("POD_STOP_GRACE"))
    comfyui_command: str | None = Field(None, validation_alias=_env("COMFYUI_COMMAND"))

    # --- logs ----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", validation_alias=_env("LOG_LEVEL", "LOG_LEVEL")
    )
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=_env("LOG_FORMAT", "LOG_FORMAT")
    )

    @field_validator("pod_services", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec_is_base64(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if secret.startswith("whsec_"):
            try:
                base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except binascii.Error as exc:
                raise ValueError("a whsec_ secret must be followed by a base64 key") from exc
        return value

    @property
    def version(self) -> str:
        from easel import __version__

        return self.api_version or __version__

    @property
    def results_path(self) -> Path:
        return self.results_dir or self.data_dir / "results"

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_size_mb * 1024 * 1024)

    def endpoint(self, name: str) -> ServiceEndpoint:
        """The gateway's view of service `name` (one of SERVICE_NAMES)."""
        if name not in SERVICE_NAMES:
            raise KeyError(name)
        timeout = getattr(self, f"{name}_timeout") or self.request_timeout
        return ServiceEndpoint(
            name=name,
            url=getattr(self, f"{name}_url"),
            health_mode=getattr(self, f"{name}_health_mode"),
            timeout=timeout,
        )


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `overrides`, for a child process (`easel up`):
    the child reads its own settings from it."""
    return {**os.environ, **overrides}


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad setting, for start-up (no traceback)."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "settings"
        value = item.get("input")
        secret = "secret" in loc.lower()  # never echo a secret into logs
        shown = f" (got {value!r})" if isinstance(value, str | int | float) and not secret else ""
        parts.append(f"{loc.upper()}: {item['msg']}{shown}")
    return "invalid settings: " + "; ".join(parts)
