"""The `easel` command as a user runs it: a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import Stack, base_env, free_port


def run_easel(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "easel", *args],
        cwd=tmp_path,
        env=base_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_python_m_easel_is_the_easel_command(tmp_path: Path) -> None:
    result = run_easel(tmp_path, "--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "health" in result.stdout
    assert Path(sys.executable).with_name("easel").exists()


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = run_easel(tmp_path, "serve", env={"EASEL_PORT": "abc"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "EASEL_PORT" in lines[0] and "'abc'" in lines[0]


def test_health_prints_a_table(tmp_path: Path, stack: Stack) -> None:
    result = run_easel(tmp_path, "health", stack.url, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "healthy" in result.stdout
    assert "image_utils" in result.stdout


def test_health_of_an_unreachable_gateway_fails(tmp_path: Path) -> None:
    result = run_easel(tmp_path, "health", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot read health" in result.stderr


def test_serve_one_service_on_its_own(tmp_path: Path) -> None:
    from tests.support.servers import start_server

    server = start_server("image-utils", tmp_path)
    try:
        body = httpx.get(f"{server.url}/api/health").json()
        assert body["service"] == "image_utils"
        # A service alone has no gateway routes.
        assert httpx.get(f"{server.url}/api/system/health").status_code == 404
    finally:
        server.stop()


def test_every_spelling_of_a_service_serves_it(tmp_path: Path) -> None:
    from tests.support.servers import start_server

    for typed in ("job-manager", "jobs"):  # jobs: compat, the pod's first name for it
        server = start_server(typed, tmp_path, env={"EASEL_JOBS_IN_PROCESS_WORKER": "false"})
        try:
            body = httpx.get(f"{server.url}/api/health").json()
            assert body["service"] == "job_manager", typed
        finally:
            server.stop()
    unknown = run_easel(tmp_path, "serve", "job_manager")
    assert unknown.returncode == 2 and "job-manager" in unknown.stderr
