"""Settings: EASEL_ names, the first deployments' names, .env, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from easel.core.settings import HealthMode, Settings, describe_validation_error


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


def test_defaults() -> None:
    settings = Settings()
    assert settings.port == 8000
    assert settings.data_dir == Path("data")
    assert settings.image_utils_url is None
    assert settings.endpoint("image_utils").in_process
    assert settings.endpoint("image_utils").health_mode is HealthMode.ACTIVE
    assert settings.endpoint("image_utils").timeout == settings.request_timeout


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_first_version_names_are_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    field, expected = LEGACY[name]
    monkeypatch.setenv(name, str(expected))
    assert getattr(Settings(), field) == expected


def test_gpu_service_url_is_the_generation_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_SERVICE_URL", "http://gpu:8001/")
    settings = Settings()
    assert settings.generation_url == "http://gpu:8001/"
    assert settings.endpoint("generation").url == "http://gpu:8001"


def test_easel_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_UTILS_SERVICE_URL", "http://old:1")
    monkeypatch.setenv("EASEL_IMAGE_UTILS_URL", "http://new:2")
    assert Settings().image_utils_url == "http://new:2"


def test_per_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_IMAGE_UTILS_TIMEOUT", "3")
    monkeypatch.setenv("EASEL_IMAGE_UTILS_HEALTH_MODE", "passive")
    endpoint = Settings().endpoint("image_utils")
    assert endpoint.timeout == 3
    assert endpoint.health_mode is HealthMode.PASSIVE


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("EASEL_PORT=8123\nMAX_IMAGE_SIZE_MB=7\n")
    settings = Settings()
    assert settings.port == 8123
    assert settings.max_image_bytes == 7 * 1024 * 1024


def test_cors_origins_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_validation_error_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_PORT", "eighty")
    monkeypatch.setenv("EASEL_IMAGE_UTILS_HEALTH_MODE", "sometimes")
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_validation_error(caught.value)
    assert "\n" not in line
    assert "EASEL_PORT" in line and "'eighty'" in line
    assert "IMAGE_UTILS_HEALTH_MODE" in line


def test_results_live_under_the_data_dir_unless_shared_storage_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EASEL_DATA_DIR", "/srv/easel")
    assert Settings().results_path == Path("/srv/easel/results")
    monkeypatch.setenv("EASEL_RESULTS_DIR", "/mnt/shared/results")
    assert Settings().results_path == Path("/mnt/shared/results")
