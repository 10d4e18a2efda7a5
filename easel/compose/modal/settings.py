"""The Modal deployment's own settings (`EASEL_MODAL_*`, read where `modal deploy` runs),
and the environment each service's containers get.

Everything a service reads keeps its usual name (`EASEL_WORKER_CONCURRENCY`,
`EASEL_GENERATION_MODEL`, ...): what is set where `modal deploy` runs is handed to the
containers, over the deployment's defaults below. Secrets are not: they belong in the
`modal.Secret`, as an environment value would show in Modal's dashboard.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import Field

from easel.core.settings import EaselSettingsBase, env

# Inside every container: where the models Volume and the results Volume are mounted.
MODELS_MOUNT = "/models"
RESULTS_MOUNT = "/results"
DATA_DIR = "/data"  # container-local scratch (prepared images, tiny models, caches)
# What the first deployment ran on its A100 (overridable: EASEL_GENERATION_MODEL).
DEFAULT_GENERATION_MODEL = "qwen-image-edit"

# The services of the deployment, by their service key (`easel.compose.services`), and the
# gateway: their Modal class names and web labels (the URL is <workspace>--<label>.modal.run).
CLASS_NAMES = {
    "gateway": "ApiGateway",
    "job_manager": "JobManager",
    "generation": "Generation",
    "segmentation": "Segmentation",
    "image_utils": "ImageUtils",
}
LABELS = {
    "gateway": "api-gateway",
    "job_manager": "job-manager",
    "generation": "generation",
    "segmentation": "segmentation",
    "image_utils": "image-utils",
}

# Values that are secrets: taken from the modal.Secret only, never from the deployer's
# environment into the app's definition.
SECRET_NAMES = frozenset(
    {
        "EASEL_INTERNAL_TOKEN",
        "EASEL_API_KEYS",
        "EASEL_ADMIN_API_KEYS",
        "EASEL_KEY_PEPPER",
        "EASEL_METRICS_TOKEN",
        "EASEL_WEBHOOK_SECRET",
        "EASEL_REDIS_URL",
        "REDIS_URL",
        "EASEL_RATE_LIMIT_REDIS_URL",
        "EASEL_MODAL_PROXY_TOKEN_ID",
        "EASEL_MODAL_PROXY_TOKEN_SECRET",
        "HF_TOKEN",
    }
)
# The names of the first deployments (SPEC, "Configuration"), handed on like EASEL_ ones.
LEGACY_NAMES = frozenset(
    {
        "GENERATION_SERVICE_URL",
        "SEGMENTATION_SERVICE_URL",
        "IMAGE_UTILS_SERVICE_URL",
        "JOB_MANAGER_SERVICE_URL",
        "GPU_SERVICE_URL",
        "COMFYUI_API_URL",
        "MODELS_PATH",
        "WORKFLOWS_PATH",
        "REQUEST_TIMEOUT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "MAX_IMAGE_SIZE_MB",
        "API_TITLE",
        "API_VERSION",
        "GENERATION_ENGINE",
        "SEGMENTATION_MODEL",
        "FASTSAM_WEIGHTS",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
    }
)


class ModalDeploySettings(EaselSettingsBase):
    """How the Modal app is laid out: names, GPUs, scaling, and what cold starts cost."""

    app_name: str = Field("easel", min_length=1, validation_alias=env("MODAL_APP"))
    # The one modal.Secret every service gets (README, "Deploy on Modal").
    secret_name: str = Field("easel-secrets", min_length=1, validation_alias=env("MODAL_SECRET"))
    # A second secret holding HF_TOKEN, for download_weights only (gated or private models).
    hub_secret_name: str | None = Field(None, validation_alias=env("MODAL_HUB_SECRET"))
    models_volume: str = Field("easel-models", validation_alias=env("MODAL_MODELS_VOLUME"))
    results_volume: str = Field("easel-results", validation_alias=env("MODAL_RESULTS_VOLUME"))
    # Prepended to every web label, to deploy two copies in one workspace and environment.
    label_prefix: str = Field("", validation_alias=env("MODAL_LABEL_PREFIX"))

    # --- GPUs -------------------------------------------------------------------------
    generation_gpu: str = Field("A100-80GB", validation_alias=env("MODAL_GENERATION_GPU"))
    segmentation_gpu: str = Field("T4", validation_alias=env("MODAL_SEGMENTATION_GPU"))
    # Cores for the GPU services' own CPU work: decoding and encoding images, the batcher,
    # the classical segmenter.
    generation_cpu: float = Field(4.0, gt=0, validation_alias=env("MODAL_GENERATION_CPU"))
    segmentation_cpu: float = Field(2.0, gt=0, validation_alias=env("MODAL_SEGMENTATION_CPU"))
    # MiB of memory to reserve for generation (unset: Modal's default). A model is read
    # into memory before it goes to the GPU: Qwen-Image-Edit needs about 64 GiB for that.
    generation_memory: int | None = Field(
        None, ge=128, validation_alias=env("MODAL_GENERATION_MEMORY")
    )
    # The CUDA build of torch the GPU images install: the versions `make` pins (Makefile).
    torch: list[str] = Field(
        default_factory=lambda: ["torch==2.14.1", "torchvision==0.29.1"],
        validation_alias=env("MODAL_TORCH"),
    )

    # --- scaling: always on, or scale to zero after an idle window (seconds) -----------
    gateway_min_containers: int = Field(1, ge=0, validation_alias=env("MODAL_GATEWAY_MIN"))
    job_manager_min_containers: int = Field(1, ge=0, validation_alias=env("MODAL_JOB_MANAGER_MIN"))
    # One by default: its workers' result images are written to a Volume, which another
    # container sees only after a commit and reload.
    job_manager_max_containers: int = Field(1, ge=1, validation_alias=env("MODAL_JOB_MANAGER_MAX"))
    generation_min_containers: int = Field(0, ge=0, validation_alias=env("MODAL_GENERATION_MIN"))
    segmentation_min_containers: int = Field(
        0, ge=0, validation_alias=env("MODAL_SEGMENTATION_MIN")
    )
    image_utils_min_containers: int = Field(0, ge=0, validation_alias=env("MODAL_IMAGE_UTILS_MIN"))
    generation_scaledown_window: int = Field(
        300, ge=2, le=3600, validation_alias=env("MODAL_GENERATION_SCALEDOWN")
    )
    segmentation_scaledown_window: int = Field(
        300, ge=2, le=3600, validation_alias=env("MODAL_SEGMENTATION_SCALEDOWN")
    )
    image_utils_scaledown_window: int = Field(
        120, ge=2, le=3600, validation_alias=env("MODAL_IMAGE_UTILS_SCALEDOWN")
    )

    # --- requests one container takes at once ------------------------------------------
    # Unset: generation's from its batcher (README); the others' fixed below.
    generation_max_inputs: int | None = Field(
        None, ge=1, validation_alias=env("MODAL_GENERATION_MAX_INPUTS")
    )
    segmentation_max_inputs: int = Field(
        32, ge=1, validation_alias=env("MODAL_SEGMENTATION_MAX_INPUTS")
    )
    image_utils_max_inputs: int = Field(
        32, ge=1, validation_alias=env("MODAL_IMAGE_UTILS_MAX_INPUTS")
    )
    # Event streams hold a request open for a job's whole run: many at once per container.
    gateway_max_inputs: int = Field(1000, ge=1, validation_alias=env("MODAL_GATEWAY_MAX_INPUTS"))
    job_manager_max_inputs: int = Field(
        1000, ge=1, validation_alias=env("MODAL_JOB_MANAGER_MAX_INPUTS")
    )
    # The job manager's in-container workers (EASEL_WORKER_CONCURRENCY wins when set).
    job_workers: int = Field(4, ge=1, validation_alias=env("MODAL_JOB_WORKERS"))

    # --- cold starts ------------------------------------------------------------------
    # Snapshot the CPU side of a GPU service's start (imports; and the weights of the
    # families in snapshot_families, loaded to memory) so a cold start restores it.
    memory_snapshot: bool = Field(True, validation_alias=env("MODAL_MEMORY_SNAPSHOT"))
    # Families small enough that their weights go into the snapshot (Qwen-Image and FLUX
    # weigh 30-60 GB: reading them from the Volume beats restoring them).
    snapshot_families: list[str] = Field(
        default_factory=lambda: ["sd", "sdxl"], validation_alias=env("MODAL_SNAPSHOT_FAMILIES")
    )

    # --- Modal's own proxy auth in front of the services ---------------------------------
    # The services' URLs then also need Modal-Key/Modal-Secret headers, which the gateway
    # and the job manager send (EASEL_MODAL_PROXY_TOKEN_ID/_SECRET, in the secret).
    proxy_auth: bool = Field(False, validation_alias=env("MODAL_PROXY_AUTH"))

    # --- seconds one request may run (Modal's per-input timeout) ------------------------
    generation_timeout: int = Field(900, ge=10, validation_alias=env("MODAL_GENERATION_TIMEOUT"))
    stream_timeout: int = Field(3600, ge=10, validation_alias=env("MODAL_STREAM_TIMEOUT"))

    def label(self, service: str) -> str:
        return self.label_prefix + LABELS[service]


def deployer_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings to hand to the containers: every EASEL_ and first-deployment name set
    where `modal deploy` runs (the layout's EASEL_MODAL_ ones too: a container imports the
    app again and must lay it out the same), but the secrets."""
    source = os.environ if environ is None else environ
    return {
        name: value
        for name, value in source.items()
        if (name.startswith("EASEL_") or name in LEGACY_NAMES) and name not in SECRET_NAMES
    }


def secrets_in_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret names set where `modal deploy` runs: not handed on (they go in the secret)."""
    source = os.environ if environ is None else environ
    return sorted(name for name in SECRET_NAMES if source.get(name))


def _service_defaults(service: str, deploy: ModalDeploySettings) -> dict[str, str]:
    """What a service's containers get unless the deployer set it."""
    scale_to_zero = {"generation", "segmentation", "image_utils"}
    per_service: dict[str, dict[str, str]] = {
        # Public URL: the limits and the key rule of a server reachable from anywhere.
        # Health never wakes a service that scales to zero (`?deep=true` does).
        "gateway": {
            "EASEL_HOST": "0.0.0.0",
            **{f"EASEL_{key.upper()}_HEALTH_MODE": "passive" for key in scale_to_zero},
            "EASEL_JOB_MANAGER_HEALTH_MODE": "active",
            # A synchronous generation may wait for a cold start first: as long as
            # generation's own limit, not the gateway's usual one.
            "EASEL_GENERATION_TIMEOUT": str(deploy.generation_timeout),
        },
        # Jobs outlive containers and redeploys: in Redis, never in container-local SQLite.
        "job_manager": {
            "EASEL_JOBS_BACKEND": "redis",
            "EASEL_JOBS_IN_PROCESS_WORKER": "true",
            "EASEL_RESULTS_DIR": RESULTS_MOUNT,
            "EASEL_WORKER_CONCURRENCY": str(deploy.job_workers),
        },
        # Weights come from the Volume (download_weights), never from the hub at start.
        "generation": {
            "EASEL_GENERATION_DEVICE": "cuda",
            "EASEL_GENERATION_MODEL": DEFAULT_GENERATION_MODEL,
            "HF_HUB_OFFLINE": "1",
        },
        # download_weights fetches what generation will load.
        "download": {"EASEL_GENERATION_MODEL": DEFAULT_GENERATION_MODEL},
        "segmentation": {"EASEL_SEGMENTATION_DEVICE": "cuda"},
        "image_utils": {},
    }
    return {
        "EASEL_DATA_DIR": DATA_DIR,
        "MODELS_PATH": MODELS_MOUNT,
        "EASEL_LOG_FORMAT": "json",
        **per_service[service],
    }


def service_environment(
    service: str, deploy: ModalDeploySettings, handed: Mapping[str, str]
) -> dict[str, str]:
    """The environment `service`'s containers get: the deployment's defaults, then what
    the deployer set (`deployer_environment`)."""
    return {**_service_defaults(service, deploy), **handed}
