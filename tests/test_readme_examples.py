"""The README's "First five minutes" examples run as written, against a real all-in-one
server with the tiny model: the curl block with bash (curl, jq, base64), the SDK block
with this Python, the CLI block with this venv's `easel`. Each leaves the files it says
it writes, as images."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.servers import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[1]
README_URL = "http://127.0.0.1:8000"
RUN_TIMEOUT = 600  # generous: the tiny model on a slow machine, a dozen calls


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def code_block(heading: str, language: str) -> str:
    """The first `language` block under `### heading` of the first-five-minutes section."""
    part = section("First five minutes").split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", part, re.DOTALL)
    assert match, f"no {language} block under {heading}"
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"EASEL_GENERATION_MODEL": "tiny-random"}
    process = start_server("all", tmp_path_factory.mktemp("readme"), env=env)
    yield process
    process.stop()


def run(command: list[str], cwd: Path, server: ServerProcess) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "EASEL_URL": server.url,
    }
    return subprocess.run(  # noqa: S603
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )


def assert_images(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        assert path.is_file(), f"{name} was not written"
        with Image.open(path) as image:
            image.verify()


def test_the_curl_examples_run(server: ServerProcess, tmp_path: Path) -> None:
    script = code_block("curl", "sh").replace(README_URL, server.url)
    done = run(["bash", "-euo", "pipefail", "-c", script], tmp_path, server)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "event: result" in done.stdout  # the stream's and the job's last events
    assert_images(
        tmp_path,
        ["apple.png", "lighthouse.png", "mask.png", "mask-soft.png", "pear.png", "small.png"],
    )


def test_the_sdk_example_runs(server: ServerProcess, tmp_path: Path) -> None:
    script = code_block("Python SDK", "python").replace(README_URL, server.url)
    done = run([sys.executable, "-c", script], tmp_path, server)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "step 4/4" in done.stdout  # the stream's progress, as the example prints it
    assert "404 not_found" in done.stdout  # the error example
    assert_images(tmp_path, ["apple.png", "lighthouse.png", "pear.png", "small.png"])


def test_the_cli_example_runs(server: ServerProcess, tmp_path: Path) -> None:
    script = code_block("Command line", "sh").replace(README_URL, server.url)
    done = run(["bash", "-euo", "pipefail", "-c", script], tmp_path, server)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "4/4" in done.stderr  # the progress bars
    assert "tiny-random" in done.stdout  # the models table
    assert_images(
        tmp_path,
        ["apple.png", "lighthouse.png", "mask.png", "mask-soft.png", "pear.png", "small.png"],
    )
