"""`download_weights` run locally, as `modal run deploy/modal_app.py::download_weights`
would run it, against a folder with the hub offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.deploy.modal_parts import APP_FILE

ROOT = APP_FILE.parents[1]
LOCAL_RUN_WARNING = "The download_weights function is executing locally"
SCRIPT = (
    "import importlib.util\n"
    f"spec = importlib.util.spec_from_file_location('modal_app', {str(APP_FILE)!r})\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "module.download_weights.local(model={model!r})\n"
)


def _run(tmp: Path, model: str, **extra: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("EASEL_", "HF_"))}
    env = {
        **keep,
        "PYTHONPATH": str(ROOT),
        "MODELS_PATH": str(tmp / "models"),
        "EASEL_DATA_DIR": str(tmp / "data"),
        "HF_HUB_OFFLINE": "1",
        "EASEL_SEGMENTATION_MODEL": "grabcut",
        **extra,
    }
    return subprocess.run(
        # Modal's own warning that a local run has no Volume: here that is the point.
        [sys.executable, "-W", f"ignore:{LOCAL_RUN_WARNING}", "-c", SCRIPT.format(model=model)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_offline_it_says_what_it_would_fetch_and_fails_in_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "qwen-image-edit,sd-turbo")
    assert done.returncode == 1
    destination = tmp_path / "models" / "Qwen" / "Qwen-Image-Edit"
    assert f"would fetch qwen-image-edit: Qwen/Qwen-Image-Edit -> {destination}" in done.stdout
    assert "would fetch sd-turbo: stabilityai/sd-turbo" in done.stdout
    assert done.stderr.strip().splitlines() == [
        "download_weights: cannot fetch qwen-image-edit (Qwen/Qwen-Image-Edit), "
        "sd-turbo (stabilityai/sd-turbo): HF_HUB_OFFLINE is set"
    ]
    assert not (tmp_path / "models").exists()


def test_with_everything_there_it_fetches_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "Qwen" / "Qwen-Image-Edit"
    folder.mkdir(parents=True)
    (folder / ".easel-weights.json").write_text("{}")
    # The deployment's default model, as download_weights' environment names it.
    done = _run(tmp_path, "", EASEL_GENERATION_MODEL="qwen-image-edit")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"skip qwen-image-edit: already in {folder}"


def test_an_unknown_model_is_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "not-a-model")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("download_weights: unknown model 'not-a-model': known are ")
