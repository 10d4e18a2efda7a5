"""What the Modal containers refuse, one refusal at a time, and the environment each
service's containers get from where `modal deploy` runs.

Every refusal is a `DeploymentRefused`: a SystemExit whose message is one line that names
the service and what to set, because Modal shows a container's exit message as its error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from easel.compose.modal import runtime
from easel.compose.modal.runtime import DeploymentRefused, gateway_app, linked
from easel.compose.modal.settings import (
    SECRET_NAMES,
    ModalDeploySettings,
    deployer_environment,
    secrets_in_environment,
    service_environment,
)

TOKEN = "internal-" + "t" * 32
KEY = "sk-runtime-" + "k" * 24
URLS = {
    "EASEL_GENERATION_URL": "http://generation.test",
    "EASEL_SEGMENTATION_URL": "http://segmentation.test",
    "EASEL_IMAGE_UTILS_URL": "http://image-utils.test",
    "EASEL_JOB_MANAGER_URL": "http://job-manager.test",
}


@pytest.fixture(autouse=True)
def container(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A container's environment: its scratch folder, nothing else of this machine's."""
    for name in list(os.environ):
        if name.startswith("EASEL_") or name in {"REDIS_URL", "MODELS_PATH"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODELS_PATH", str(tmp_path / "models"))
    # Containers configure logging; in this process it would undo caplog's.
    monkeypatch.setattr(runtime, "configure_logging", lambda *a: None)
    yield monkeypatch


def refusal(excinfo: pytest.ExceptionInfo[DeploymentRefused]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert isinstance(excinfo.value, SystemExit)
    return message


def nowhere(key: str) -> str:
    raise AssertionError(f"Modal was asked for {key}'s URL")


# ---- the job manager -------------------------------------------------------------------
def test_the_job_manager_refuses_without_redis(container: pytest.MonkeyPatch) -> None:
    container.setenv("EASEL_INTERNAL_TOKEN", TOKEN)
    container.setenv("EASEL_JOBS_BACKEND", "redis")  # the deployment's default, no URL
    with pytest.raises(DeploymentRefused) as excinfo:
        runtime.job_manager_app(lambda key: "http://generation.test")
    message = refusal(excinfo)
    assert message.startswith("easel job-manager on Modal: EASEL_REDIS_URL is not set")
    assert "modal.Secret" in message and "SQLite" in message


def test_the_job_manager_refuses_sqlite_even_with_a_redis_url(
    container: pytest.MonkeyPatch,
) -> None:
    container.setenv("EASEL_INTERNAL_TOKEN", TOKEN)
    container.setenv("EASEL_JOBS_BACKEND", "sqlite")
    container.setenv("EASEL_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(DeploymentRefused) as excinfo:
        runtime.job_manager_app(lambda key: "http://generation.test")
    assert "EASEL_REDIS_URL" in refusal(excinfo)


def test_the_job_manager_refuses_without_the_internal_token(
    container: pytest.MonkeyPatch,
) -> None:
    container.setenv("EASEL_JOBS_BACKEND", "redis")
    container.setenv("EASEL_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(DeploymentRefused) as excinfo:
        runtime.job_manager_app(lambda key: "http://generation.test")
    message = refusal(excinfo)
    assert message.startswith("easel job-manager on Modal:")
    assert "EASEL_INTERNAL_TOKEN" in message


# ---- every service behind the gateway needs the internal token ---------------------------
def test_image_utils_refuses_without_the_internal_token() -> None:
    with pytest.raises(DeploymentRefused) as excinfo:
        runtime.image_utils_app()
    message = refusal(excinfo)
    assert message.startswith("easel image-utils on Modal:")
    assert "EASEL_INTERNAL_TOKEN" in message


@pytest.mark.parametrize("service", ["generation", "segmentation"])
def test_the_gpu_services_refuse_without_the_internal_token_before_loading(
    service: str, container: pytest.MonkeyPatch
) -> None:
    from easel.compose.modal import gpu_services

    container.setenv("EASEL_GENERATION_MODEL", "tiny-random")
    container.setenv("EASEL_GENERATION_DEVICE", "cpu")
    loads: list[str] = []
    container.setattr(gpu_services, "build_engine", lambda *a: loads.append("engine"))
    container.setattr(gpu_services, "warm_imports", lambda *a: loads.append("imports"))
    stage = {
        "generation": gpu_services.GenerationContainer.stage,
        "segmentation": gpu_services.SegmentationContainer.stage,
    }[service]
    with pytest.raises(DeploymentRefused) as excinfo:
        stage(ModalDeploySettings())
    message = refusal(excinfo)
    assert message.startswith(f"easel {service} on Modal:")
    assert "EASEL_INTERNAL_TOKEN" in message
    assert loads == [], "it loaded before refusing"


def test_with_the_token_image_utils_serves(container: pytest.MonkeyPatch) -> None:
    container.setenv("EASEL_INTERNAL_TOKEN", TOKEN)
    assert runtime.image_utils_app().title


def test_allow_unauthenticated_lets_a_service_serve_with_a_warning(
    container: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    container.setenv("EASEL_ALLOW_UNAUTHENTICATED", "true")
    runtime.image_utils_app()
    assert any("EASEL_INTERNAL_TOKEN" in r.getMessage() for r in caplog.records)


# ---- the gateway -----------------------------------------------------------------------
def test_the_gateway_refuses_without_api_keys(container: pytest.MonkeyPatch) -> None:
    for name, url in URLS.items():
        container.setenv(name, url)
    container.setenv("EASEL_INTERNAL_TOKEN", TOKEN)
    with pytest.raises(DeploymentRefused) as excinfo:
        gateway_app(nowhere)
    message = refusal(excinfo)
    assert message.startswith("easel gateway on Modal:")
    assert "EASEL_API_KEYS" in message


def test_the_gateway_serves_with_keys(container: pytest.MonkeyPatch) -> None:
    for name, url in URLS.items():
        container.setenv(name, url)
    container.setenv("EASEL_INTERNAL_TOKEN", TOKEN)
    container.setenv("EASEL_API_KEYS", KEY)
    container.setenv("EASEL_HOST", "0.0.0.0")
    assert gateway_app(nowhere) is not None


# ---- finding the other services ----------------------------------------------------------
def test_a_configured_url_wins_and_modal_is_asked_for_the_rest(
    container: pytest.MonkeyPatch,
) -> None:
    container.setenv("EASEL_SEGMENTATION_URL", "http://configured.test")
    asked: list[str] = []

    def discover(key: str) -> str:
        asked.append(key)
        return f"https://workspace--{key}.modal.run"

    settings = linked("gateway", ("generation", "segmentation"), discover)
    assert asked == ["generation"]
    assert settings.topology.url("segmentation") == "http://configured.test"
    assert settings.topology.url("generation") == "https://workspace--generation.modal.run"


def test_discovery_failing_is_one_line_naming_the_service(
    container: pytest.MonkeyPatch,
) -> None:
    def discover(key: str) -> str:
        raise LookupError(f"App 'easel' has no class for {key}\nsecond line")

    with pytest.raises(DeploymentRefused) as excinfo:
        linked("gateway", ("generation",), discover)
    message = refusal(excinfo)
    assert message.startswith("easel gateway on Modal: cannot find generation's URL")
    assert "LookupError" in message and "second line" in message


def test_without_modal_a_missing_url_says_which_setting(container: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeploymentRefused) as excinfo:
        linked("job-manager", ("generation",), None)
    assert refusal(excinfo) == (
        "easel job-manager on Modal: no URL for generation: set EASEL_GENERATION_URL"
    )


def test_a_bad_setting_is_one_refusal_naming_the_variable(
    container: pytest.MonkeyPatch,
) -> None:
    container.setenv("EASEL_WORKER_CONCURRENCY", "many")
    with pytest.raises(DeploymentRefused) as excinfo:
        runtime.load_settings("job-manager")
    message = str(excinfo.value)
    assert message.startswith("easel job-manager on Modal:")
    assert "EASEL_WORKER_CONCURRENCY" in message


def test_warm_imports_skips_what_is_missing(caplog: pytest.LogCaptureFixture) -> None:
    runtime.warm_imports(["json", "easel_no_such_module"])
    assert any("easel_no_such_module" in r.getMessage() for r in caplog.records)


# ---- the environment handed to the containers -------------------------------------------
def test_the_deployer_hands_on_easel_and_legacy_names_but_no_secret() -> None:
    environ = {
        "EASEL_GENERATION_MODEL": "sdxl",
        "EASEL_MODAL_GENERATION_GPU": "H100",
        "MODELS_PATH": "/elsewhere",
        "LOG_LEVEL": "DEBUG",
        "HOME": "/root",
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "no",
        **{name: "secret-value" for name in SECRET_NAMES},
    }
    handed = deployer_environment(environ)
    assert handed == {
        "EASEL_GENERATION_MODEL": "sdxl",
        "EASEL_MODAL_GENERATION_GPU": "H100",
        "MODELS_PATH": "/elsewhere",
        "LOG_LEVEL": "DEBUG",
    }
    assert secrets_in_environment(environ) == sorted(SECRET_NAMES)
    assert secrets_in_environment({"EASEL_API_KEYS": ""}) == []


def test_each_service_gets_its_defaults_under_what_the_deployer_set() -> None:
    deploy = ModalDeploySettings(job_workers=7, generation_timeout=1200)
    gateway = service_environment("gateway", deploy, {})
    assert gateway["EASEL_HOST"] == "0.0.0.0"
    for key in ("GENERATION", "SEGMENTATION", "IMAGE_UTILS"):
        assert gateway[f"EASEL_{key}_HEALTH_MODE"] == "passive"
    assert gateway["EASEL_JOB_MANAGER_HEALTH_MODE"] == "active"
    assert gateway["EASEL_GENERATION_TIMEOUT"] == "1200"

    jobs = service_environment("job_manager", deploy, {})
    assert jobs["EASEL_JOBS_BACKEND"] == "redis"
    assert jobs["EASEL_JOBS_IN_PROCESS_WORKER"] == "true"
    assert jobs["EASEL_RESULTS_DIR"] == "/results"
    assert jobs["EASEL_WORKER_CONCURRENCY"] == "7"

    generation = service_environment("generation", deploy, {"EASEL_GENERATION_MODEL": "sdxl"})
    assert generation["EASEL_GENERATION_MODEL"] == "sdxl"  # the deployer's wins
    assert generation["EASEL_GENERATION_DEVICE"] == "cuda"
    assert generation["HF_HUB_OFFLINE"] == "1"
    assert service_environment("download", deploy, {})["EASEL_GENERATION_MODEL"] == (
        "qwen-image-edit"
    )
    assert service_environment("segmentation", deploy, {})["EASEL_SEGMENTATION_DEVICE"] == "cuda"
    for service in ("gateway", "job_manager", "generation", "segmentation", "image_utils"):
        environment = service_environment(service, deploy, {"EASEL_LOG_LEVEL": "DEBUG"})
        assert environment["MODELS_PATH"] == "/models"
        assert environment["EASEL_DATA_DIR"] == "/data"
        assert environment["EASEL_LOG_FORMAT"] == "json"
        assert environment["EASEL_LOG_LEVEL"] == "DEBUG"
        assert not SECRET_NAMES & set(environment)


def test_a_bad_layout_setting_names_the_variable(container: pytest.MonkeyPatch) -> None:
    container.setenv("EASEL_MODAL_GENERATION_SCALEDOWN", "1")
    with pytest.raises(ValueError, match="EASEL_MODAL_GENERATION_SCALEDOWN"):
        ModalDeploySettings()
