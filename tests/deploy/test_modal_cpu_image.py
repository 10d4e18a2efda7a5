"""The CPU services' image has no torch: the gateway, job manager and image-utils must
build, and serve their docs, in a Python where the ML libraries cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = {"torch", "torchvision", "diffusers", "transformers", "accelerate", "ultralytics"}

    class NoML(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not in the CPU image")
            return None

    sys.meta_path.insert(0, NoML())

    from easel.compose.modal.runtime import gateway_app, image_utils_app, job_manager_app

    gateway = gateway_app(None)
    paths = gateway.openapi()["paths"]  # built from every service's app, remote or not
    assert "/api/generate" in paths and "/api/smart-mask" in paths, sorted(paths)
    job_manager_app(None)
    image_utils_app()
    assert not BLOCKED & set(sys.modules), BLOCKED & set(sys.modules)
    print("ok")
    """
)


def test_the_cpu_services_build_without_the_ml_libraries(tmp_path: Path) -> None:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("EASEL_")}
    env = {
        **keep,
        "PYTHONPATH": str(ROOT),
        "EASEL_DATA_DIR": str(tmp_path),
        "EASEL_API_KEYS": "sk-cpu-image-" + "k" * 24,
        "EASEL_INTERNAL_TOKEN": "t" * 32,
        "EASEL_REDIS_URL": "redis://127.0.0.1:6379/0",
        "EASEL_JOBS_BACKEND": "redis",
        "EASEL_HOST": "0.0.0.0",
        **{
            f"EASEL_{key}_URL": f"http://127.0.0.1:{port}"
            for key, port in (
                ("GENERATION", 9),
                ("SEGMENTATION", 9),
                ("IMAGE_UTILS", 9),
                ("JOB_MANAGER", 9),
            )
        },
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
