"""easel on Modal: `modal deploy deploy/modal_app.py` (README, "Deploy on Modal").

One app, one class per service, each serving that service's own app:

    api-gateway   CPU, always on      the one public entry point
    job-manager   CPU, always on      jobs in Redis; its workers call generation's URL
    generation    GPU (A100-80GB)     scales to zero; weights from the models Volume
    segmentation  GPU (T4)            scales to zero
    image-utils   CPU                 scales to zero

Everything is configured by environment variables where `modal deploy` runs: the layout by
`EASEL_MODAL_*` (`easel.compose.modal.settings`), the services by their usual names, handed
on to the containers; secrets come from one modal.Secret. Weights are fetched into the
Volume once: `modal run deploy/modal_app.py::download_weights --model qwen-image-edit`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import modal

# Where `modal deploy` runs from a checkout, easel is imported from it; in a container it
# is installed in the image.
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "easel").is_dir() and str(_CHECKOUT) not in sys.path:
    sys.path.insert(0, str(_CHECKOUT))

from easel.compose.modal.images import IGNORED, SOURCE_MOUNT, image_plan, source_root  # noqa: E402
from easel.compose.modal.settings import (  # noqa: E402
    CLASS_NAMES,
    MODELS_MOUNT,
    RESULTS_MOUNT,
    ModalDeploySettings,
    deployer_environment,
    service_environment,
)
from easel.generation.settings import GenerationSettings  # noqa: E402

deploy = ModalDeploySettings()
_ROOT = source_root(__file__)
_HANDED = deployer_environment()
# Requests beyond the running batch and its queue are refused (429) by the service itself;
# a few more slots keep health and metrics answering while it is full.
_REQUEST_HEADROOM = 4

app = modal.App(deploy.app_name)


# --- images ---------------------------------------------------------------------------
def _image(service: str) -> modal.Image:
    """easel's dependencies (the shared base layer), the service's extras, then easel
    from this repository's source: a code change rebuilds only the last layers."""
    plan = image_plan(service, _ROOT / "pyproject.toml", deploy.torch)
    image = (
        modal.Image.debian_slim(python_version="3.11")
        .apt_install(*plan.apt)
        .pip_install(*plan.base)
    )
    if plan.extras:
        image = image.pip_install(*plan.extras)
    if plan.reinstall:
        quoted = " ".join(shlex.quote(r) for r in plan.reinstall)
        image = image.run_commands(f"pip install --force-reinstall --no-deps {quoted}")
    return image.add_local_dir(_ROOT, SOURCE_MOUNT, copy=True, ignore=list(IGNORED)).run_commands(
        f"pip install --no-deps {SOURCE_MOUNT}"
    )


cpu_image = _image("gateway")  # the gateway's, the job manager's and image-utils' (no torch)
generation_image = _image("generation")
segmentation_image = _image("segmentation")
download_image = _image("download")

# --- storage and secrets ------------------------------------------------------------
models_volume = modal.Volume.from_name(deploy.models_volume, create_if_missing=True)
results_volume = modal.Volume.from_name(deploy.results_volume, create_if_missing=True)
secrets = [modal.Secret.from_name(deploy.secret_name)]
hub_secrets = [modal.Secret.from_name(deploy.hub_secret_name)] if deploy.hub_secret_name else []


def _environment(service: str) -> dict[str, str | None]:
    return dict(service_environment(service, deploy, _HANDED))


def discover(key: str) -> str:
    """A service's URL, as Modal has it (the deployed class's `serve` endpoint)."""
    service_cls: Any = modal.Cls.from_name(deploy.app_name, CLASS_NAMES[key])
    url = service_cls().serve.get_web_url()
    if not url:
        raise LookupError(f"{CLASS_NAMES[key]} has no web URL in app {deploy.app_name!r}")
    return str(url)


# --- the always-on CPU services -------------------------------------------------------
@app.cls(
    image=cpu_image,
    cpu=1.0,
    secrets=secrets,
    env=_environment("gateway"),
    min_containers=deploy.gateway_min_containers,
    timeout=deploy.stream_timeout,
)
@modal.concurrent(max_inputs=deploy.gateway_max_inputs)
class ApiGateway:
    @modal.asgi_app(label=deploy.label("gateway"))
    def serve(self) -> Any:
        from easel.compose.modal.runtime import gateway_app

        return gateway_app(discover)


@app.cls(
    image=cpu_image,
    cpu=1.0,
    secrets=secrets,
    env=_environment("job_manager"),
    volumes={RESULTS_MOUNT: results_volume},
    min_containers=deploy.job_manager_min_containers,
    max_containers=deploy.job_manager_max_containers,
    timeout=deploy.stream_timeout,
)
@modal.concurrent(max_inputs=deploy.job_manager_max_inputs)
class JobManager:
    @modal.asgi_app(label=deploy.label("job_manager"), requires_proxy_auth=deploy.proxy_auth)
    def serve(self) -> Any:
        from easel.compose.modal.runtime import job_manager_app

        return job_manager_app(discover)


# --- the services that scale to zero ---------------------------------------------------
@app.cls(
    image=cpu_image,
    cpu=1.0,
    secrets=secrets,
    env=_environment("image_utils"),
    min_containers=deploy.image_utils_min_containers,
    scaledown_window=deploy.image_utils_scaledown_window,
)
@modal.concurrent(max_inputs=deploy.image_utils_max_inputs)
class ImageUtils:
    @modal.asgi_app(label=deploy.label("image_utils"), requires_proxy_auth=deploy.proxy_auth)
    def serve(self) -> Any:
        from easel.compose.modal.runtime import image_utils_app

        return image_utils_app()


_generation = GenerationSettings()  # the batcher's size, as the containers will read it


@app.cls(
    image=generation_image,
    gpu=deploy.generation_gpu,
    cpu=deploy.generation_cpu,
    memory=deploy.generation_memory,
    secrets=secrets,
    env=_environment("generation"),
    volumes={MODELS_MOUNT: models_volume},
    min_containers=deploy.generation_min_containers,
    scaledown_window=deploy.generation_scaledown_window,
    timeout=deploy.generation_timeout,
    enable_memory_snapshot=deploy.memory_snapshot,
)
# Up to a batch per container before Modal adds one; the batcher's queue behind it.
@modal.concurrent(
    max_inputs=deploy.generation_max_inputs
    or _generation.batch_max_images + _generation.generation_max_pending + _REQUEST_HEADROOM,
    target_inputs=_generation.batch_max_images,
)
class Generation:
    @modal.enter(snap=deploy.memory_snapshot)  # before the snapshot, when there is one
    def stage(self) -> None:
        from easel.compose.modal.gpu_services import GenerationContainer

        self.container = GenerationContainer.stage(deploy)

    @modal.enter(snap=False)
    def place(self) -> None:
        self.container.place()

    @modal.asgi_app(label=deploy.label("generation"), requires_proxy_auth=deploy.proxy_auth)
    def serve(self) -> Any:
        return self.container.app()


@app.cls(
    image=segmentation_image,
    gpu=deploy.segmentation_gpu,
    cpu=deploy.segmentation_cpu,
    secrets=secrets,
    env=_environment("segmentation"),
    volumes={MODELS_MOUNT: models_volume},
    min_containers=deploy.segmentation_min_containers,
    scaledown_window=deploy.segmentation_scaledown_window,
    enable_memory_snapshot=deploy.memory_snapshot,
)
@modal.concurrent(max_inputs=deploy.segmentation_max_inputs)
class Segmentation:
    @modal.enter(snap=deploy.memory_snapshot)  # before the snapshot, when there is one
    def stage(self) -> None:
        from easel.compose.modal.gpu_services import SegmentationContainer

        self.container = SegmentationContainer.stage(deploy)

    @modal.enter(snap=False)
    def place(self) -> None:
        self.container.place()

    @modal.asgi_app(label=deploy.label("segmentation"), requires_proxy_auth=deploy.proxy_auth)
    def serve(self) -> Any:
        return self.container.app()


# --- weights ---------------------------------------------------------------------------
@app.function(
    image=download_image,
    cpu=2.0,
    secrets=hub_secrets,
    env=_environment("download"),
    volumes={MODELS_MOUNT: models_volume},
    timeout=4 * 3600,
)
def download_weights(model: str = "") -> None:
    """Fetch models into the Volume, skipping what is there: `--model` names them
    (comma-separated: qwen-image-edit, sd-turbo, fastsam, ...); none: the deployment's
    generation model and FastSAM's weights."""
    from easel.compose.weights import WeightsError, download_main

    names = [name.strip() for name in model.split(",") if name.strip()]
    try:
        fetched = download_main(names)
    except WeightsError as exc:
        raise SystemExit(f"download_weights: {exc}") from None
    if fetched:
        models_volume.commit()
