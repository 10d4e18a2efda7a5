"""torch.compile happens at start-up for the configured batch sizes, never on a request."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import start_server

COMPILE_WAIT = 300.0  # compiling the tiny UNet takes about 40 s on 2 cores


@pytest.mark.timeout(COMPILE_WAIT + 120)
def test_compiled_at_startup_and_never_on_a_request(tmp_path: Path) -> None:
    env = {
        "EASEL_GENERATION_COMPILE": "true",
        "EASEL_GENERATION_COMPILE_BATCH_SIZES": "[1]",
        "EASEL_GENERATION_LOAD": "startup",
    }
    server = start_server("generation", tmp_path, env=env)
    try:
        deadline = time.monotonic() + COMPILE_WAIT
        while time.monotonic() < deadline:
            detail = httpx.get(f"{server.url}/api/health").json()["detail"]
            if "compile" in detail or detail.get("last_error"):
                break
            time.sleep(0.5)
        compiled = detail["compile"]
        assert compiled["warmed_shapes"] == [[1, 64, 64, True]]
        graphs = compiled["graphs"]
        assert graphs >= 1

        def generate(**fields: object) -> None:
            body = {"prompt": "x", "seed": 1, "steps": 2, **fields}
            response = httpx.post(f"{server.url}/api/generate", json=body, timeout=120)
            assert response.status_code == 200, response.text

        generate()  # the warmed shape: compiled module
        generate(width=96)  # another shape: eager, not a compile
        generate(num_images=2)  # another batch size: eager
        after = httpx.get(f"{server.url}/api/health").json()["detail"]["compile"]
        assert (after["compiled_calls"], after["eager_calls"]) == (1, 2)
        assert after["graphs"] == graphs, "a request compiled a graph"
        assert any((tmp_path / "data" / "models" / "torch-compile").iterdir())
    finally:
        server.stop()
