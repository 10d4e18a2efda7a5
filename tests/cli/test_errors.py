"""The client commands' failures: one line on stderr that says what to do, and the exit
code of its kind (1: the server said no; 2: bad usage, no server); never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import KEY, Easel
from tests.support.images import scene
from tests.support.servers import ServerProcess, base_env, free_port


@pytest.fixture()
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Easel:
    """No server listens at its URL."""
    monkeypatch.chdir(tmp_path)
    return Easel(f"http://127.0.0.1:{free_port()}", tmp_path)


@pytest.fixture()
def keyed(keyed_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Easel:
    monkeypatch.chdir(tmp_path)
    return Easel(keyed_server.url, tmp_path)


@pytest.mark.parametrize(
    "args",
    [("generate", "a fox"), ("jobs", "list"), ("models",), ("workflows",)],
)
def test_no_server_is_exit_2_saying_to_start_one(nowhere: Easel, args: tuple[str, ...]) -> None:
    failed = nowhere.run(*args)
    assert failed.exit_code == 2
    assert failed.stderr == (
        f"easel: cannot reach {nowhere.url}: is `easel serve` running? "
        "(else pass --url or set EASEL_URL)\n"
    )


def test_the_real_command_fails_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "easel", "jobs", "status", "abc"],
        env={**base_env(tmp_path), "EASEL_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"easel: cannot reach {url}: is `easel serve` running? (else pass --url or set EASEL_URL)"
    ]


def test_a_keyed_server_without_a_key_is_401_saying_how_to_pass_one(keyed: Easel) -> None:
    refused = keyed.run("generate", "a fox", "--steps", "1")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "easel: 401: this server needs an API key: pass --api-key or set EASEL_API_KEY"
    )
    wrong = keyed.run("jobs", "list", key="sk-wrong-" + "x" * 24)
    assert wrong.exit_code == 1 and "check --api-key" in wrong.stderr
    listed = keyed.run("jobs", "list", key=KEY)  # EASEL_API_KEY
    assert listed.exit_code == 0, listed.output
    flag = keyed.run("jobs", "list", "--api-key", KEY)
    assert flag.exit_code == 0, flag.output


def test_an_unknown_job_is_404(keyed: Easel) -> None:
    for command in ("status", "wait", "cancel", "result"):
        missing = keyed.run("jobs", command, "no-such-job", key=KEY)
        assert missing.exit_code == 1, (command, missing.output)
        assert missing.stderr.startswith("easel: 404: "), missing.stderr


def test_a_refused_generation_is_exit_1_naming_the_field(keyed: Easel) -> None:
    refused = keyed.run("generate", "a fox", "--steps", "100000", key=KEY)
    assert refused.exit_code == 1 and refused.stderr.startswith("easel: 422: ")
    assert "steps" in refused.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("mask", "in.png", "--point", "120"), "'120' is not X,Y"),
        (("mask", "in.png", "--point", "a,b"), "'a,b' is not X,Y"),
        (("mask", "in.png", "--box", "1,2,3"), "is not X1,Y1,X2,Y2"),
        (("generate", "x", "--size", "512"), "is not WIDTHxHEIGHT"),
        (("mask", "missing.png", "--point", "1,1"), "does not exist"),
        (("utils", "resize", "in.png", "--fit", "squash"), "squash"),
    ],
)
def test_bad_usage_is_exit_2(nowhere: Easel, args: tuple[str, ...], says: str) -> None:
    scene(16, 16).save(nowhere.cwd / "in.png")
    failed = nowhere.run(*args)
    assert failed.exit_code == 2
    assert says in " ".join(failed.stderr.split()), failed.stderr  # rich wraps a box


def test_a_mask_needs_a_point_or_a_box(nowhere: Easel) -> None:
    scene(16, 16).save(nowhere.cwd / "in.png")
    failed = nowhere.run("mask", "in.png")
    assert failed.exit_code == 2
    assert failed.stderr.startswith("easel: say where the object is: --point X,Y")
