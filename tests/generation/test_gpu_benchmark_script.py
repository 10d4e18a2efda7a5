"""benchmarks/gpu/generation_gpu.py still runs on a CPU, as its README's smoke run does:
tiny configs through easel.generation.tiny's builders, easel's way through the generation
service's own batcher and engine, and the full-size FLOPs on meta."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu" / "generation_gpu.py"


def run_script(tmp: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(SCRIPT), "--cache-dir", str(tmp / "inductor"), *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.timeout(300)
def test_the_tiny_smoke_run_measures_both_models(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    run_script(tmp_path, "--device", "cpu", "--tiny", "--no-measure-peak", "--json", str(out))
    figures = json.loads(out.read_text())
    facts = figures["facts"]
    assert facts["tiny"] is True
    assert facts["sdxl_tflop_per_image"] > 0 and facts["qwen_tflop_per_image"] > 0
    # (image, text) tokens per transformer pass, negative and prompt: the tokenizer's
    # merges spell the prompt's words (without them it takes 66 tokens, not 18).
    assert facts["qwen_token_shapes"] == [[32, 37], [32, 54]]
    rows = [row for table in figures["tables"].values() for row in table]
    assert any(row["name"].startswith("easel's way") for row in rows)
    # easel's way is its generation service: every request answered, in batched calls of
    # the batcher (8 clients, at most 4 or 8 images a call).
    served = facts["sdxl_served"]
    assert [run["max_batch"] for run in served] == [4, 8]
    for run in served:
        assert run["images"] == 16 and 16 / run["max_batch"] <= run["calls"] <= 8, run
    assert any(row["name"].startswith("edit end to end") for row in rows)


@pytest.mark.timeout(300)
def test_full_size_flops_are_counted_on_meta(tmp_path: Path) -> None:
    printed = run_script(tmp_path, "--flops-only")
    assert "416.3 TFLOP per image" in printed  # SDXL 1024x1024, 30 steps
    assert "16.76 PFLOP per edit" in printed  # Qwen-Image-Edit 1024x1024, 50 steps
