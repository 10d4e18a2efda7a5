"""Settings: EASEL_ names, the first deployments' names, .env, one-line errors, and each
service's own settings class."""

from __future__ import annotations

from pathlib import Path

import pytest

from easel.compose.settings import SETTINGS_CLASSES, EaselSettings, SettingsError
from easel.gateway.settings import HealthMode, ServiceEndpoint


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EASEL_") or key in LEGACY:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


LEGACY = {
    "GENERATION_SERVICE_URL": ("generation_url", "http://gpu:8001"),
    "SEGMENTATION_SERVICE_URL": ("segmentation_url", "http://seg:8002"),
    "IMAGE_UTILS_SERVICE_URL": ("image_utils_url", "http://utils:8003"),
    "JOB_MANAGER_SERVICE_URL": ("job_manager_url", "http://jobs:8004"),
    "COMFYUI_API_URL": ("comfyui_api_url", "http://comfy:8188"),
    "MODELS_PATH": ("models_path", Path("/models")),
    "WORKFLOWS_PATH": ("workflows_path", Path("/workflows")),
    "REQUEST_TIMEOUT": ("request_timeout", 12.5),
    "LOG_LEVEL": ("log_level", "DEBUG"),
    "MAX_IMAGE_SIZE_MB": ("max_image_size_mb", 3.0),
    "API_TITLE": ("api_title", "pod"),
    "API_VERSION": ("api_version", "9.9"),
    "BACKEND_HOST": ("host", "0.0.0.0"),
    "BACKEND_PORT": ("port", 9000),
    "GPU_SERVER_HOST": ("generation_host", "10.0.0.2"),
    "GPU_SERVER_PORT": ("generation_port", 9001),
}


def value(settings: EaselSettings, field: str) -> object:
    """A setting by its field name, from whichever section owns it."""
    for section in vars(settings).values():
        if field in type(section).model_fields:
            return getattr(section, field)
    raise KeyError(field)


def endpoint(settings: EaselSettings, key: str) -> ServiceEndpoint:
    return settings.topology.endpoint(key, default_timeout=settings.gateway.request_timeout)


def test_defaults() -> None:
    settings = EaselSettings.load()
    assert settings.gateway.port == 8000
    assert settings.jobs.data_dir == Path("data")
    assert settings.topology.image_utils_url is None
    assert endpoint(settings, "image_utils").in_process
    assert endpoint(settings, "image_utils").health_mode is HealthMode.ACTIVE
    assert endpoint(settings, "image_utils").timeout == settings.gateway.request_timeout


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_first_version_names_are_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    field, expected = LEGACY[name]
    monkeypatch.setenv(name, str(expected))
    assert value(EaselSettings.load(), field) == expected


def test_gpu_service_url_is_the_generation_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_SERVICE_URL", "http://gpu:8001/")
    settings = EaselSettings.load()
    assert settings.topology.generation_url == "http://gpu:8001/"
    assert endpoint(settings, "generation").url == "http://gpu:8001"


def test_easel_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_UTILS_SERVICE_URL", "http://old:1")
    monkeypatch.setenv("EASEL_IMAGE_UTILS_URL", "http://new:2")
    assert EaselSettings.load().topology.image_utils_url == "http://new:2"


def test_per_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_IMAGE_UTILS_TIMEOUT", "3")
    monkeypatch.setenv("EASEL_IMAGE_UTILS_HEALTH_MODE", "passive")
    image_utils = endpoint(EaselSettings.load(), "image_utils")
    assert image_utils.timeout == 3
    assert image_utils.health_mode is HealthMode.PASSIVE


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("EASEL_PORT=8123\nMAX_IMAGE_SIZE_MB=7\n")
    settings = EaselSettings.load()
    assert settings.gateway.port == 8123
    assert settings.image_utils.max_image_bytes == 7 * 1024 * 1024


def test_cors_origins_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert EaselSettings.load().gateway.cors_origins == ["https://a.example", "https://b.example"]


def test_validation_error_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_PORT", "eighty")
    monkeypatch.setenv("EASEL_IMAGE_UTILS_HEALTH_MODE", "sometimes")
    with pytest.raises(SettingsError) as caught:
        EaselSettings.load()
    line = str(caught.value)
    assert "\n" not in line
    assert "EASEL_PORT" in line and "'eighty'" in line
    assert "IMAGE_UTILS_HEALTH_MODE" in line


def test_results_live_under_the_data_dir_unless_shared_storage_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EASEL_DATA_DIR", "/srv/easel")
    assert EaselSettings.load().jobs.images_path == Path("/srv/easel/results")
    monkeypatch.setenv("EASEL_RESULTS_DIR", "/mnt/shared/results")
    assert EaselSettings.load().jobs.images_path == Path("/mnt/shared/results")


def test_a_shared_setting_reaches_every_service_and_its_error_is_named_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EASEL_DATA_DIR", "/srv/easel")
    settings = EaselSettings.load()
    for key in ("generation", "segmentation", "image_utils", "job_manager"):
        assert settings.of(key).data_dir == Path("/srv/easel")
    monkeypatch.setenv("EASEL_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError) as caught:
        EaselSettings.load()
    assert str(caught.value).count("EASEL_LOG_LEVEL") == 1


def test_each_service_reads_only_its_own_settings() -> None:
    settings = EaselSettings.load()
    assert "comfyui_api_url" in type(settings.generation).model_fields
    assert "jobs_backend" not in type(settings.generation).model_fields
    assert "segmentation_model" not in type(settings.jobs).model_fields
    assert "generation_url" not in type(settings.gateway).model_fields
    assert "webhook_secret" in type(settings.jobs).model_fields


def test_values_win_over_the_environment_and_unknown_names_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EASEL_PORT", "8123")
    assert EaselSettings.load(port=9000).gateway.port == 9000
    with pytest.raises(TypeError, match="no_such_thing"):
        EaselSettings.load(no_such_thing=1)


def test_every_settings_class_reads_the_easel_prefix() -> None:
    for kind in SETTINGS_CLASSES:
        assert kind.model_config.get("env_prefix") == "EASEL_", kind
