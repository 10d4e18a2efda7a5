"""Running the client commands in this process against real servers on loopback: the
suite's `stack` (all-in-one and split, tests/conftest.py) and, for the key checks, an
all-in-one server with API keys on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from easel.cli import app
from tests.support.servers import ServerProcess, Stack, start_server

KEY = "sk-cli-test-" + "k" * 24


@dataclass
class Easel:
    """`easel ...` against one server: `run(*args)` adds --url unless given."""

    url: str
    cwd: Path

    def run(self, *args: str, key: str | None = None) -> Result:
        argv = [*args] if "--url" in args else [*args, "--url", self.url]
        env = {"EASEL_URL": None, "EASEL_API_KEY": key, "COLUMNS": "200"}
        result = CliRunner().invoke(app, argv, env=env)
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result


@pytest.fixture()
def easel(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Easel:
    monkeypatch.chdir(tmp_path)
    return Easel(stack.url, tmp_path)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server("all", tmp_path_factory.mktemp("keyed"), {"EASEL_API_KEYS": KEY})
    try:
        yield server
    finally:
        server.stop()
