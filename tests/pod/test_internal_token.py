"""The pod's internal token: one for every easel process of the pod, kept in the run
directory when generated, so restarts and later `easel up`s hold the same."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from easel.compose.settings import EaselSettings
from easel.pod.internal_token import TOKEN_FILE, describe_token, pod_token
from easel.pod.plan import COMFYUI, build_plan

pytestmark = pytest.mark.usefixtures("clean_env")


def test_the_plan_gives_every_easel_process_the_one_token() -> None:
    settings = EaselSettings.load(comfyui_command="python main.py", pod_workers=2)
    plan = build_plan(settings, internal_token="one-for-the-pod")
    easel = [process for process in plan if process.name != COMFYUI]
    assert {p.name for p in easel} >= {"gateway", "generation", "job-manager", "worker-2"}
    assert all(p.env["EASEL_INTERNAL_TOKEN"] == "one-for-the-pod" for p in easel)
    comfyui = next(process for process in plan if process.name == COMFYUI)
    assert "EASEL_INTERNAL_TOKEN" not in comfyui.env  # not ours to tell ComfyUI
    # A plan only looked at (status, logs, down) carries none.
    assert all("EASEL_INTERNAL_TOKEN" not in p.env for p in build_plan(settings))


def test_a_generated_token_is_kept_private_and_stable(tmp_path: Path) -> None:
    settings = EaselSettings.load(run_dir=tmp_path / "run")
    assert "none yet" in describe_token(settings)
    first = pod_token(settings)
    path = tmp_path / "run" / TOKEN_FILE
    assert first.source == str(path)
    assert len(first.value) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pod_token(settings) == first  # what the watchdog's restarts and a later up get
    assert pod_token(EaselSettings.load(run_dir=tmp_path / "run")).value == first.value
    assert str(path) in describe_token(settings) and first.value not in describe_token(settings)
    assert [p.name for p in path.parent.iterdir()] == [TOKEN_FILE]  # no draft left behind
    other = pod_token(EaselSettings.load(run_dir=tmp_path / "elsewhere"))
    assert other.value != first.value


def test_a_configured_token_wins_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EASEL_INTERNAL_TOKEN", "from-the-operator")
    settings = EaselSettings.load(run_dir=tmp_path / "run")
    token = pod_token(settings)
    assert (token.value, token.source) == ("from-the-operator", "EASEL_INTERNAL_TOKEN")
    assert not (tmp_path / "run" / TOKEN_FILE).exists()
    assert "from EASEL_INTERNAL_TOKEN" in describe_token(settings)
