"""benchmarks/jobs.py still runs, in both layouts, and every job it submits ends done."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = str(Path(__file__).parents[2] / "benchmarks")


@pytest.fixture(scope="module")
def bench():
    # On sys.path under its own name: the worker processes, which get this process's
    # sys.path, import it again to find their target.
    sys.path.insert(0, BENCHMARKS)
    try:
        yield importlib.import_module("jobs")
    finally:
        sys.path.remove(BENCHMARKS)
        sys.modules.pop("jobs", None)


@pytest.mark.parametrize("layout", ["processes", "one-loop"])
async def test_a_small_run_ends_every_job_done(bench, layout, redis_url) -> None:
    figures = await bench.run_case("redis", layout, 2, 20, redis_url, 0.01)
    assert figures["not_done"] == 0
    assert figures["jobs_per_s"] > 0 and figures["pickup_p50_ms"] >= 0
