"""`easel download`: says its plan, skips what is there, and fails in one line (exit 1)
where it cannot fetch: here, with no network, every hub download."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from easel.cli import app
from easel.compose.weights import MARKER


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELS_PATH", str(tmp_path / "models"))
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EASEL_SEGMENTATION_MODEL", "grabcut")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)


def test_offline_it_says_the_plan_and_fails_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["download", "sdxl-turbo"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    target = tmp_path / "models" / "stabilityai" / "sdxl-turbo"
    assert lines[0] == f"would fetch sdxl-turbo: stabilityai/sdxl-turbo -> {target}"
    assert lines[-1].startswith("easel download:") and "HF_HUB_OFFLINE" in lines[-1]
    assert not target.exists()


def test_what_is_there_is_skipped(tmp_path: Path) -> None:
    target = tmp_path / "models" / "stabilityai" / "sd-turbo"
    target.mkdir(parents=True)
    (target / MARKER).write_text('{"source": "stabilityai/sd-turbo"}')
    result = CliRunner().invoke(app, ["download", "sd-turbo"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"skip sd-turbo: already in {target}"


def test_an_unknown_model_names_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["download", "no-such-model"])
    assert result.exit_code == 1, result.output
    assert "no-such-model" in result.output and "sd-turbo" in result.output
