"""Pod tests: settings from a clean environment; helpers to run `easel` and watch processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings() sees only what a test sets: no EASEL_ variables, no stray .env."""
    for key in list(os.environ):
        if key.startswith("EASEL_") or key in ("BACKEND_PORT", "GPU_SERVER_PORT"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
