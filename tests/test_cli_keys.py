"""`easel keys create | list | revoke`, and `easel serve`'s loopback rule without keys."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from easel.cli import app
from tests.gateway.keys_support import clear_easel_env
from tests.test_cli import run_easel


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)
    # The commands set up this process's logging, bound to the runner's streams; the
    # records still reach caplog without it.
    monkeypatch.setattr("easel.cli.configure_logging", lambda *args: None)
    monkeypatch.setattr("easel.cli.keys.configure_logging", lambda *args: None)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {"EASEL_DATA_DIR": str(tmp_path / "data")}


def easel(env: dict[str, str], *args: str, **extra: str) -> Any:
    return CliRunner().invoke(app, list(args), env={**env, **extra})


def test_create_prints_the_key_once(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="easel.audit"):
        made = easel(
            env,
            "keys", "create", "ci", "--scopes", "generate,jobs",
            "--max-concurrent-jobs", "2", "--requests-per-minute", "30",
        )  # fmt: skip
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("easel_") and "\n" not in key
    assert "will not be shown again" in made.stderr
    listed = easel(env, "keys", "list", COLUMNS="200")
    assert listed.exit_code == 0
    assert "ci" in listed.stdout and "generate,jobs" in listed.stdout and "30" in listed.stdout
    secret = key.split("_", 2)[2]
    assert key not in listed.output and secret not in listed.output
    stored = (Path(env["EASEL_DATA_DIR"]) / "keys.json").read_text()
    digest = stored.split('"hash": "')[1].split('"')[0]
    assert digest not in listed.output  # nor its hash
    created = [r for r in caplog.records if getattr(r, "audit", None) == "key_create"]
    assert len(created) == 1 and created[0].key_name == "ci"  # type: ignore[attr-defined]
    assert secret not in created[0].getMessage()


def test_a_duplicate_name_is_refused(env: dict[str, str]) -> None:
    assert easel(env, "keys", "create", "ci", "--scopes", "jobs").exit_code == 0
    again = easel(env, "keys", "create", "ci", "--scopes", "admin")
    assert again.exit_code == 1
    assert "a key named 'ci' exists already" in again.stderr
    assert again.stdout == ""


def test_an_unknown_scope_is_refused(env: dict[str, str]) -> None:
    bad = easel(env, "keys", "create", "ci", "--scopes", "jobs,everything")
    assert bad.exit_code == 2 and "everything" in bad.stderr
    assert not (Path(env["EASEL_DATA_DIR"]) / "keys.json").exists()


def test_revoke(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    easel(env, "keys", "create", "a", "--scopes", "jobs")
    easel(env, "keys", "create", "b", "--scopes", "jobs")
    with caplog.at_level(logging.INFO, logger="easel.audit"):
        gone = easel(env, "keys", "revoke", "a")
    assert gone.exit_code == 0 and "revoked" in gone.stdout
    assert [getattr(r, "audit", None) for r in caplog.records] == ["key_revoke"]
    listed = easel(env, "keys", "list").stdout
    assert "b" in listed and " a " not in listed
    last = easel(env, "keys", "revoke", "b")
    assert last.exit_code == 0 and "no keys are left" in last.stderr
    unknown = easel(env, "keys", "revoke", "b")
    assert unknown.exit_code == 1 and "no key named 'b'" in unknown.stderr
    assert "no keys in" in easel(env, "keys", "list").stdout


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `easel serve` would have run, instead of running it."""
    import uvicorn

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kwargs: runs.append(kwargs))
    return runs


@pytest.mark.parametrize("target", ["all", "gateway"])
def test_serving_beyond_loopback_without_keys_is_refused(
    env: dict[str, str], served: list[dict[str, Any]], target: str
) -> None:
    refused = easel(env, "serve", target, "--host", "0.0.0.0")
    assert refused.exit_code == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "EASEL_ALLOW_UNAUTHENTICATED" in lines[0], refused.stderr
    assert "0.0.0.0" in lines[0]
    assert served == []


def test_serving_beyond_loopback_needs_keys_or_permission(
    env: dict[str, str], served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    assert easel(env, "serve", "--host", "127.0.0.1").exit_code == 0
    assert easel(env, "serve", EASEL_HOST="0.0.0.0").exit_code == 2  # from the setting too
    assert easel(env, "serve", "--host", "0.0.0.0", EASEL_API_KEYS="k1").exit_code == 0
    assert easel(env, "keys", "create", "ci", "--scopes", "jobs").exit_code == 0
    assert easel(env, "serve", "--host", "0.0.0.0").exit_code == 0
    assert [run["host"] for run in served] == ["127.0.0.1", "0.0.0.0", "0.0.0.0"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_allowed_unauthenticated_serving_warns(
    env: dict[str, str], served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        answer = easel(env, "serve", "--host", "0.0.0.0", EASEL_ALLOW_UNAUTHENTICATED="true")
    assert answer.exit_code == 0, answer.output
    assert served and served[0]["host"] == "0.0.0.0"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("without API keys" in w and "0.0.0.0" in w for w in warnings), warnings


def test_the_real_command_refuses_too(tmp_path: Path) -> None:
    result = run_easel(tmp_path, "serve", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_health_of_a_keyed_server_takes_an_admin_key(tmp_path: Path) -> None:
    from easel.core.identity import ApiScope
    from easel.gateway.auth.admin import KeyAdmin
    from tests.support.servers import start_server

    data = tmp_path / "data"
    _, admin_key = KeyAdmin(data / "keys.json", data / "keys.pepper").create(
        "ops", [ApiScope.ADMIN]
    )
    server = start_server("all", tmp_path, env={"EASEL_JOBS_IN_PROCESS_WORKER": "false"})
    try:
        refused = run_easel(tmp_path, "health", server.url)
        assert refused.returncode == 1 and "API key is required" in refused.stderr
        answered = run_easel(tmp_path, "health", server.url, "--key", admin_key)
        assert "image_utils" in answered.stdout, answered.stderr
    finally:
        server.stop()
