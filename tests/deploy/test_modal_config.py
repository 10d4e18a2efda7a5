"""`deploy/modal_app.py` as Modal would deploy it: each class's GPU, CPU, scaling,
concurrency, volumes, secrets, labels and environment, by default and as overridden
where `modal deploy` runs."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from easel.compose.modal.settings import SECRET_NAMES
from easel.generation.settings import GenerationSettings
from tests.deploy.modal_parts import import_app, registered

CPU_CLASSES = ("ApiGateway", "JobManager", "ImageUtils")
GPU_CLASSES = ("Generation", "Segmentation")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No EASEL_ setting of this machine's shell leaks into the app under test."""
    import os

    for name in list(os.environ):
        if name.startswith("EASEL_") or name in ("MODELS_PATH", "HF_HUB_OFFLINE"):
            monkeypatch.delenv(name)
    yield monkeypatch


@pytest.fixture
def default_app(clean_environment: pytest.MonkeyPatch) -> ModuleType:
    return import_app()


def test_the_app_is_named_and_has_one_class_per_service(default_app: ModuleType) -> None:
    assert default_app.app.name == "easel"
    labels = {
        name: registered(getattr(default_app, name)).label for name in (*CPU_CLASSES, *GPU_CLASSES)
    }
    assert labels == {
        "ApiGateway": "api-gateway",
        "JobManager": "job-manager",
        "ImageUtils": "image-utils",
        "Generation": "generation",
        "Segmentation": "segmentation",
    }


def test_the_gateway_and_job_manager_are_always_on_cpu_services(default_app: ModuleType) -> None:
    for name in ("ApiGateway", "JobManager"):
        parts = registered(getattr(default_app, name))
        assert parts.gpu is None
        assert parts.cpu == 1.0
        assert parts.min_containers == 1
        assert parts.scaledown_window is None
        # Event streams hold a request for a job's whole run: many at once.
        assert parts.max_inputs is not None and parts.max_inputs >= 100
        assert parts.timeout >= 3600
        assert parts.secrets == ["easel-secrets"]
    gateway = registered(default_app.ApiGateway)
    assert gateway.volumes == {}
    assert gateway.environment["EASEL_HOST"] == "0.0.0.0"
    for key in ("GENERATION", "SEGMENTATION", "IMAGE_UTILS"):
        assert gateway.environment[f"EASEL_{key}_HEALTH_MODE"] == "passive"
    assert gateway.environment["EASEL_JOB_MANAGER_HEALTH_MODE"] == "active"
    assert gateway.environment["EASEL_GENERATION_TIMEOUT"] == "900"
    jobs = registered(default_app.JobManager)
    assert jobs.volumes == {"/results": "easel-results"}
    assert jobs.max_containers == 1
    assert jobs.environment["EASEL_JOBS_BACKEND"] == "redis"
    assert jobs.environment["EASEL_JOBS_IN_PROCESS_WORKER"] == "true"
    assert jobs.environment["EASEL_RESULTS_DIR"] == "/results"
    assert jobs.environment["EASEL_WORKER_CONCURRENCY"] == "4"


def test_generation_scales_to_zero_on_an_a100_sized_to_its_batcher(
    default_app: ModuleType,
) -> None:
    parts = registered(default_app.Generation)
    batcher = GenerationSettings()
    assert parts.gpu == "A100-80GB"
    assert parts.min_containers == 0
    assert parts.scaledown_window == 300
    assert parts.memory_snapshot is True
    assert parts.volumes == {"/models": "easel-models"}
    assert parts.secrets == ["easel-secrets"]
    # A full batch per container before Modal adds one; the batcher's queue behind it.
    assert parts.target_inputs == batcher.batch_max_images
    assert parts.max_inputs is not None
    assert parts.max_inputs > batcher.batch_max_images + batcher.generation_max_pending
    assert parts.environment["EASEL_GENERATION_DEVICE"] == "cuda"
    assert parts.environment["EASEL_GENERATION_MODEL"] == "qwen-image-edit"
    assert parts.environment["MODELS_PATH"] == "/models"
    assert parts.environment["HF_HUB_OFFLINE"] == "1"


def test_segmentation_scales_to_zero_on_a_t4_and_image_utils_on_cpu(
    default_app: ModuleType,
) -> None:
    segmentation = registered(default_app.Segmentation)
    assert segmentation.gpu == "T4"
    assert segmentation.min_containers == 0
    assert segmentation.scaledown_window == 300
    assert segmentation.memory_snapshot is True
    assert segmentation.volumes == {"/models": "easel-models"}
    utils = registered(default_app.ImageUtils)
    assert utils.gpu is None
    assert utils.min_containers == 0
    assert utils.scaledown_window == 120
    assert utils.volumes == {}


def test_no_service_sits_behind_proxy_auth_by_default(default_app: ModuleType) -> None:
    for name in (*CPU_CLASSES, *GPU_CLASSES):
        assert registered(getattr(default_app, name)).proxy_auth is False


def test_the_layout_is_overridden_where_modal_deploy_runs(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "EASEL_MODAL_APP": "easel-staging",
        "EASEL_MODAL_SECRET": "staging-secrets",
        "EASEL_MODAL_GENERATION_GPU": "H100",
        "EASEL_MODAL_SEGMENTATION_GPU": "L4",
        "EASEL_MODAL_GENERATION_SCALEDOWN": "60",
        "EASEL_MODAL_GENERATION_MIN": "1",
        "EASEL_MODAL_LABEL_PREFIX": "staging-",
        "EASEL_MODAL_PROXY_AUTH": "true",
        "EASEL_MODAL_MEMORY_SNAPSHOT": "false",
        "EASEL_MODAL_MODELS_VOLUME": "staging-models",
        "EASEL_BATCH_MAX_IMAGES": "8",
        "EASEL_WORKER_CONCURRENCY": "16",
    }.items():
        clean_environment.setenv(name, value)
    module = import_app()
    assert module.app.name == "easel-staging"
    generation = registered(module.Generation)
    assert generation.gpu == "H100"
    assert generation.scaledown_window == 60
    assert generation.min_containers == 1
    assert generation.memory_snapshot is False
    assert generation.target_inputs == 8
    assert generation.volumes == {"/models": "staging-models"}
    assert generation.secrets == ["staging-secrets"]
    assert generation.label == "staging-generation"
    assert registered(module.Segmentation).gpu == "L4"
    assert registered(module.ApiGateway).label == "staging-api-gateway"
    # Behind Modal's proxy auth: every service but the public entry point.
    assert registered(module.ApiGateway).proxy_auth is False
    for name in ("JobManager", "ImageUtils", *GPU_CLASSES):
        assert registered(getattr(module, name)).proxy_auth is True, name
    # A service setting, by its usual name, reaches the containers and beats a default.
    assert registered(module.JobManager).environment["EASEL_WORKER_CONCURRENCY"] == "16"
    # The layout too: a container imports the app again and lays it out the same.
    assert registered(module.Generation).environment["EASEL_MODAL_GENERATION_GPU"] == "H100"


def test_secrets_where_modal_deploy_runs_never_reach_the_app_definition(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    for name in SECRET_NAMES:
        clean_environment.setenv(name, "s3cret-" + name)
    clean_environment.setenv("EASEL_LOG_LEVEL", "DEBUG")
    module = import_app()
    for cls in (*CPU_CLASSES, *GPU_CLASSES):
        environment = registered(getattr(module, cls)).environment
        assert not SECRET_NAMES & set(environment), cls
        assert not any(value.startswith("s3cret-") for value in environment.values())
        assert environment["EASEL_LOG_LEVEL"] == "DEBUG"


def test_download_weights_mounts_the_models_volume(default_app: ModuleType) -> None:
    from modal._utils.async_utils import synchronizer

    function = synchronizer._translate_in(default_app.download_weights)
    assert {path: volume._name for path, volume in function._spec.volumes.items()} == {
        "/models": "easel-models"
    }
    assert function._spec.gpus is None
