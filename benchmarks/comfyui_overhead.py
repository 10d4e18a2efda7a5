"""What easel in front of ComfyUI costs: the same weight-free workflow sent by a good direct
ComfyUI API client and through easel's sync `POST /api/generate` (the ComfyUI engine), both
against one ComfyUI server.

The workflow is EmptyImage -> ImageInvert -> SaveImage at 64x64, a different colour per
request so ComfyUI's cache never answers; easel runs it as a declared workflow file in a
temporary WORKFLOWS_PATH, so requests differ in a workflow parameter and cannot share a
call. One easel process per batch window (the default and 0) runs the generation service
alone (split mode). For each concurrency (1 and 4) the targets take turns in rotating order
over a few rounds, each sending N requests from C clients in a load process of its own
(benchmarks/_comfyui_load.py); the table prints req/s, p50/p90/p99, easel/direct
throughput and the p50 easel adds.

By default ComfyUI is the fake of the tests (tests/support/fake_comfyui.py, its own
process): it runs the three nodes in well under a millisecond, so the figures are easel's
and the client's own cost per request, not ComfyUI's. `--comfyui-url` measures against a
real one (benchmarks/README.md says how to stand one up on CPU).

    .venv/bin/python benchmarks/comfyui_overhead.py
    .venv/bin/python benchmarks/comfyui_overhead.py --comfyui-url http://127.0.0.1:8188 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _comfyui_load import graph  # noqa: E402
from _machine import busy_cpu_seconds, machine_line, wait_for_quiet_machine  # noqa: E402
from gateway_overhead import Measurement, cpu_seconds, interference  # noqa: E402

from tests.support.servers import ServerProcess, free_port, start_server  # noqa: E402

LOAD = Path(__file__).with_name("_comfyui_load.py")
DIRECT = "direct"
WORKFLOW = "bench-invert"
# The workflow file easel runs: the graph _comfyui_load.py posts directly, its colour and
# size declared as parameters.
DECLARATION = {
    "description": "A solid colour, inverted (benchmark).",
    "parameters": {
        "width": {"type": "int", "default": 64, "min": 1, "max": 4096,
                  "targets": [{"title": "Canvas", "input": "width"}]},
        "height": {"type": "int", "default": 64, "min": 1, "max": 4096,
                   "targets": [{"title": "Canvas", "input": "height"}]},
        "color": {"type": "int", "default": 0, "min": 0, "max": 16777215,
                  "targets": [{"title": "Canvas", "input": "color"}]},
        "prefix": {"type": "string", "default": "bench_easel",
                   "targets": [{"node": "3", "input": "filename_prefix"}]},
    },
}  # fmt: skip
# The targets, against a real ComfyUI, at every concurrency.
TARGET_RPS_RATIO = 0.9
TARGET_ADDED_P50_MS = 5.0

console = Console(width=132)


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "direct" or "easel"
    url: str
    server: ServerProcess | None = None  # easel's process, for its CPU per request


# ---- servers -----------------------------------------------------------------------------
def workflows_folder(tmp: Path) -> Path:
    folder = tmp / "workflows"
    folder.mkdir()
    (folder / f"{WORKFLOW}.json").write_text(json.dumps(graph(0, 64, "bench_easel")))
    (folder / f"{WORKFLOW}.easel.json").write_text(json.dumps(DECLARATION))
    return folder


def wait_for_comfyui(url: str, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the fake ComfyUI exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/system_stats", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no ComfyUI answers at {url}/system_stats")


def wait_for_engine(server: ServerProcess) -> None:
    """Until the engine's websocket to ComfyUI is open (health says ready)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = httpx.get(f"{server.url}/api/health", timeout=5).json()
        if health.get("detail", {}).get("comfyui_available"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"easel never reached ComfyUI:\n{server.log()[-2000:]}")


@contextmanager
def running_targets(
    tmp: Path, comfyui_url: str | None, windows: Sequence[str], max_queued: int | None
) -> Iterator[list[Target]]:
    with ExitStack() as stack:
        fake = None
        if comfyui_url is None:
            port = free_port()
            comfyui_url = f"http://127.0.0.1:{port}"
            log = (tmp / "fake-comfyui.log").open("wb")
            stack.callback(log.close)
            fake = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "tests.support.fake_comfyui", "--port", str(port)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            stack.callback(lambda: (fake.terminate(), fake.wait(10)))
        wait_for_comfyui(comfyui_url, fake)
        targets = [Target(DIRECT, "direct", comfyui_url)]
        folder = workflows_folder(tmp)
        for window in windows:
            env = {
                "EASEL_GENERATION_ENGINE": "comfyui",
                "EASEL_COMFYUI_API_URL": comfyui_url,
                "EASEL_WORKFLOWS_PATH": str(folder),
                "EASEL_COMFYUI_EXAMPLE_WORKFLOWS": "false",
            }
            if window != "default":
                env["EASEL_BATCH_WINDOW_MS"] = window
            if max_queued is not None:
                env["EASEL_COMFYUI_MAX_QUEUED"] = str(max_queued)
            server = start_server("generation", tmp, env)
            stack.callback(server.stop)
            wait_for_engine(server)
            name = f"easel, window {window}" + ("" if window == "default" else " ms")
            targets.append(Target(name, "easel", server.url, server))
        yield targets


# ---- measuring ---------------------------------------------------------------------------
class Colours:
    """Hands out colours no earlier request of the run painted."""

    def __init__(self) -> None:
        self.next = 1

    def take(self, count: int) -> int:
        first, self.next = self.next, self.next + count
        return first


def run_load(
    target: Target, *, requests: int, concurrency: int, size: int, colours: Colours
) -> dict[str, object]:
    warmup = max(concurrency, min(40, requests // 5))
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(LOAD),
            target.kind,
            target.url,
            "-n",
            str(requests),
            "-c",
            str(concurrency),
            "--warmup",
            str(warmup),
            "--size",
            str(size),
            "--colour",
            str(colours.take(requests + warmup + concurrency)),
        ],
        capture_output=True,
        check=False,
        timeout=900,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load failed on {target.name}:\n{completed.stderr.decode()}")
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def measure(
    targets: list[Target],
    *,
    concurrency: int,
    requests: int,
    rounds: int,
    size: int,
    colours: Colours,
) -> dict[str, Measurement]:
    results = {t.name: Measurement() for t in targets}
    for index in range(rounds):
        shift = index % len(targets)  # rotate: no target always first, or after the slowest
        for target in targets[shift:] + targets[:shift]:
            before = cpu_seconds(target.server) if target.server else 0.0
            with console.status(f"C={concurrency} round {index + 1}: {target.name}"):
                result = run_load(
                    target,
                    requests=requests,
                    concurrency=concurrency,
                    size=size,
                    colours=colours,
                )
            m = results[target.name]
            m.add(result)
            m.served += int(result["requests"]) + int(result["warmup_requests"])  # type: ignore[call-overload]
            if target.server is not None:  # easel's CPU, kept in Measurement's gateway column
                m.gateway_cpu += cpu_seconds(target.server) - before
    return results


# ---- reporting ---------------------------------------------------------------------------
def result_table(concurrency: int, results: dict[str, Measurement]) -> Table:
    direct = results[DIRECT]
    table = Table(
        title=f"C={concurrency} | {direct.requests} requests per target | latencies in ms",
        title_justify="left",
    )
    columns = ("target", "req/s", "by round", "p50", "p90", "p99", "errors")
    for column in (*columns, "x direct", "+p50", "+p99", "easel CPU/req"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for name, m in results.items():
        row = [
            name,
            f"{m.rps:,.1f}",
            "/".join(f"{r:.1f}" for r in m.round_rps),
            f"{m.percentile(50):.2f}",
            f"{m.percentile(90):.2f}",
            f"{m.percentile(99):.2f}",
            m.errors_text,
        ]
        if name == DIRECT:
            row += ["1.00", "-", "-", "-"]
        else:
            row += [
                f"{m.rps / direct.rps:.2f}",
                f"{m.percentile(50) - direct.percentile(50):+.2f}",
                f"{m.percentile(99) - direct.percentile(99):+.2f}",
                m.cpu_ms(m.gateway_cpu),
            ]
        table.add_row(*row)
    return table


def targets_table(by_level: dict[int, dict[str, Measurement]], real: bool) -> Table:
    title = (
        "Targets (against a real ComfyUI)"
        if real
        else ("Targets (meant for a real ComfyUI; against the fake, easel's own cost stands alone)")
    )
    table = Table(title=title, title_justify="left")
    for column in ("C", "target", "throughput", "added p50", "met"):
        table.add_column(column)
    for concurrency, results in by_level.items():
        direct = results[DIRECT]
        for name, m in results.items():
            if name == DIRECT:
                continue
            ratio = m.rps / direct.rps
            added = m.percentile(50) - direct.percentile(50)
            met = ratio >= TARGET_RPS_RATIO and added <= TARGET_ADDED_P50_MS
            table.add_row(
                str(concurrency),
                name,
                f"{ratio:.2f}x (>= {TARGET_RPS_RATIO})",
                f"{added:+.2f} ms (<= {TARGET_ADDED_P50_MS:g})",
                "[green]yes[/]" if met else "[red]no[/]",
            )
    return table


def figures(by_level: dict[int, dict[str, Measurement]]) -> dict[str, object]:
    return {
        str(concurrency): {
            name: {
                "requests": m.requests,
                "errors": m.errors,
                "rps": m.rps,
                "round_rps": m.round_rps,
                "round_p50_ms": m.round_p50_ms,
                "p50_ms": m.percentile(50),
                "p90_ms": m.percentile(90),
                "p99_ms": m.percentile(99),
                "easel_cpu_ms_per_request": m.gateway_cpu / m.served * 1000
                if m.served and m.gateway_cpu
                else None,
            }
            for name, m in results.items()
        }
        for concurrency, results in by_level.items()
    }


# ---- main --------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--comfyui-url", help="a running ComfyUI (default: start the fake of the tests)"
    )
    parser.add_argument("--levels", default="1,4", help="concurrencies (default: 1,4)")
    parser.add_argument(
        "--windows",
        default="default,0",
        help="easel batch windows in ms, one easel process each (default: default,0)",
    )
    parser.add_argument(
        "--max-queued", type=int, help="EASEL_COMFYUI_MAX_QUEUED (default: the setting's)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    parser.add_argument(
        "-n",
        "--requests",
        type=int,
        default=200,
        help="per target and round, at C=1 (default 200; twice that at higher concurrencies)",
    )
    parser.add_argument("--size", type=int, default=64, help="image side (default: 64)")
    parser.add_argument(
        "--max-wait", type=float, default=300, help="seconds to wait for a quiet machine"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.levels = [int(c) for c in args.levels.split(",") if c.strip()]
    args.windows = [w.strip() for w in args.windows.split(",") if w.strip()]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # servers stop on the way out
    wait_for_quiet_machine(args.max_wait, console)
    console.print(machine_line(with_torch=False))
    started = time.monotonic()
    busy_before = busy_cpu_seconds()
    times = os.times()
    own_before = times.user + times.system + times.children_user + times.children_system
    by_level: dict[int, dict[str, Measurement]] = {}
    colours = Colours()
    with tempfile.TemporaryDirectory(prefix="easel-bench-comfyui-") as tmp_name:
        tmp = Path(tmp_name)
        with running_targets(tmp, args.comfyui_url, args.windows, args.max_queued) as targets:
            console.print(
                f"ComfyUI: {targets[0].url} ({'the fake' if not args.comfyui_url else 'real'}); "
                f"workflow EmptyImage -> ImageInvert -> SaveImage at {args.size}x{args.size}"
            )
            for concurrency in args.levels:
                requests = args.requests * (1 if concurrency == 1 else 2)
                results = measure(
                    targets,
                    concurrency=concurrency,
                    requests=requests,
                    rounds=args.rounds,
                    size=args.size,
                    colours=colours,
                )
                by_level[concurrency] = results
                console.print(result_table(concurrency, results))
                for name, m in results.items():
                    if m.first_error:
                        console.print(f"  first error via {name}: {m.first_error[:300]}")
    console.print(targets_table(by_level, real=args.comfyui_url is not None))
    wall = time.monotonic() - started
    share, line = interference(busy_before, own_before, wall)
    if args.comfyui_url:
        line += " (an external ComfyUI counts among them)"
    console.print(f"\ntook {wall:.0f} s; [{'red' if share > 0.05 else 'dim'}]{line}[/]")
    if args.json:
        report = {
            "machine": machine_line(with_torch=False),
            "interference": line,
            "comfyui": "real" if args.comfyui_url else "fake",
            "levels": figures(by_level),
        }
        args.json.write_text(json.dumps(report, indent=2))
    errors = sum(m.errors + m.warmup_errors for r in by_level.values() for m in r.values())
    if errors:
        console.print(f"[red]{errors} requests did not end with their images[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
