"""benchmarks/image_ops.py still runs: a tiny case of every op, before and after, and the
two implementations agree."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = str(Path(__file__).parents[2] / "benchmarks")


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, BENCHMARKS)
    try:
        yield importlib.import_module("image_ops")
    finally:
        sys.path.remove(BENCHMARKS)
        sys.modules.pop("image_ops", None)


def test_a_tiny_run_measures_every_op_and_the_old_and_new_agree(bench: ModuleType) -> None:
    args = bench.argparse.Namespace(
        sides=[48, 64], radii=[1, 12], ops=list(bench.OPS), n=1, max_before_s=30.0
    )
    rows = bench.run(args)
    assert {row.op for row in rows} == set(bench.OPS)
    for row in rows:
        assert row.after_ms > 0 and row.before_ms is not None
        assert row.max_diff is not None and row.max_diff <= 3, row
        assert (row.service_ms is not None) == (row.side == 64)
    assert bench.table(rows).row_count == len(rows)
