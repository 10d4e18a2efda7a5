"""What batching buys the generation service, and what the service costs over a bare pipeline.

One run starts the generation service twice as its own processes, both on the built-in
`tiny-random` model (real diffusers classes, random weights, built on first use into the
data dir): once with batching ON (`EASEL_BATCH_WINDOW_MS`, `EASEL_BATCH_MAX_IMAGES`) and once
OFF (`EASEL_BATCH_MAX_IMAGES=1`). M closed-loop clients (default 8) send compatible requests
(same size, steps and guidance; different prompts and seeds) to POST /api/generate; the
rounds alternate ON and OFF. It prints images/s each way and their ratio, client-side p50
and p99 latency, and the mean `batch_size` and `timings` the service reported.

Then a lone client: one client sending its requests one after another (each as soon as the
last is answered), batching ON against OFF in alternating rounds: p50 and p90 each way and
their ratio. A lone request must not pay the batch window (continuous batching: an idle
engine starts it at once), so the ratio should be 1.00x within noise.

Then the service overhead: one request at a time (a batch of 1) through HTTP, request in ->
base64 PNG out, against the bare pipeline called in this process (loaded with diffusers'
`DiffusionPipeline.from_pretrained` from the same folder, same prompt, size, steps, seed).

Last, what adapter sets cost the batcher, on the batching-ON server: the same load with one
LoRA on every request, and with half the clients on one LoRA and half on another (requests
with different adapters never share a call), as ratios to the same load without a LoRA,
measured in the same rounds (two tiny LoRAs built with peft into the server's MODELS_PATH).
Last because the adapters stay loaded in that server's model and slow its calls.

    .venv/bin/python benchmarks/generation_batching.py               # about two minutes
    .venv/bin/python benchmarks/generation_batching.py --size 64 --requests 400 -m 4

The clients run in this process (httpx, asyncio): on a small machine they share its cores
with the service, as real clients on the same host would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import INTERFERENCE_WARN, CpuWatch, machine_line, wait_for_quiet_machine  # noqa: E402

from tests.support.servers import ServerProcess, start_server  # noqa: E402
from tests.support.tiny_lora import build_tiny_lora  # noqa: E402

MODEL = "tiny-random"
OFF, ON = "off", "on"
LORAS = ("lora-a", "lora-b")  # tiny adapters for the model, built with peft per run
# The adapter cases: what each client slot asks for.
NO_LORA, ONE_LORA, TWO_LORAS = "no LoRA", "one LoRA on all", "half on another LoRA"
ADAPTER_CASES = (NO_LORA, ONE_LORA, TWO_LORAS)
READY_TIMEOUT_S = 120.0
LONE_ROUNDS_PER_ROUND = 3  # the lone client's rounds are short: more of them

console = Console(width=132)


# ---- servers -------------------------------------------------------------------------------
def server_env(
    data_dir: Path,
    models_path: Path,
    *,
    batching: bool,
    window_ms: float,
    max_images: int,
    clients: int,
) -> dict[str, str]:
    return {
        "EASEL_DATA_DIR": str(data_dir),
        "MODELS_PATH": str(models_path),
        "EASEL_GENERATION_MODEL": MODEL,
        "EASEL_GENERATION_LOAD": "startup",
        "EASEL_GENERATION_DEVICE": "cpu",
        "EASEL_BATCH_WINDOW_MS": str(window_ms if batching else 0),
        "EASEL_BATCH_MAX_IMAGES": str(max_images if batching else 1),
        "EASEL_GENERATION_MAX_PENDING": str(max(16, 2 * clients)),
        "HF_HUB_OFFLINE": "1",
    }


def wait_ready(server: ServerProcess) -> None:
    """Health answers at once (degraded while loading); wait for the model itself."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        detail = httpx.get(f"{server.url}/api/health", timeout=5).json().get("detail", {})
        if detail.get("ready") and MODEL in detail.get("models_loaded", []):
            return
        if detail.get("last_error"):
            raise RuntimeError(f"model failed to load: {detail['last_error']}")
        time.sleep(0.1)
    raise RuntimeError(f"model not loaded after {READY_TIMEOUT_S} s:\n{server.log()}")


@contextmanager
def running_servers(
    tmp: Path, data_dir: Path, args: argparse.Namespace
) -> Iterator[dict[str, ServerProcess]]:
    with ExitStack() as stack:
        servers: dict[str, ServerProcess] = {}
        models_path = tmp / "models"
        for adapter, seed in zip(LORAS, (1, 2), strict=True):
            build_tiny_lora(models_path / "loras" / f"{adapter}.safetensors", seed=seed)
        # OFF first, alone: it builds the tiny model into the shared data dir.
        for name in (OFF, ON):
            env = server_env(
                data_dir,
                models_path,
                batching=name == ON,
                window_ms=args.window_ms,
                max_images=args.max_images,
                clients=args.clients,
            )
            server = start_server("generation", tmp, env)
            stack.callback(server.stop)
            wait_ready(server)
            servers[name] = server
        yield servers


# ---- load ----------------------------------------------------------------------------------
@dataclass
class Run:
    """All rounds of one configuration, pooled."""

    images: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    timings: dict[str, list[float]] = field(default_factory=dict)
    round_ips: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def mean_timing(self, name: str) -> float:
        values = self.timings.get(name, [])
        return statistics.fmean(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def request_body(
    args: argparse.Namespace, client: int, index: int, case: str = NO_LORA
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": f"a watercolour lighthouse at dusk, variation {client}-{index}",
        "width": args.size,
        "height": args.size,
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "seed": 1000 * client + index,
    }
    if case == ONE_LORA:
        body["loras"] = [{"name": LORAS[0], "weight": 0.8}]
    elif case == TWO_LORAS:
        body["loras"] = [{"name": LORAS[client % 2], "weight": 0.8}]
    return body


async def closed_loop(
    url: str, args: argparse.Namespace, total: int, run: Run | None, case: str = NO_LORA
) -> None:
    """`args.clients` clients each send, wait for the answer, and send again, until `total`
    answers have come; recorded into `run` (None: a warm-up)."""
    remaining = total
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one_client(slot: int) -> None:
            nonlocal remaining
            index = 0
            while remaining > 0:
                remaining -= 1
                index += 1
                sent = time.perf_counter()
                payload = request_body(args, slot, index, case)
                response = await client.post("/api/generate", json=payload)
                elapsed_ms = (time.perf_counter() - sent) * 1000
                if run is None:
                    continue
                if response.status_code != 200:
                    run.errors += 1
                    run.first_error = run.first_error or f"{response.status_code}: {response.text}"
                    continue
                body = response.json()
                run.images += len(body["images"])
                run.latencies_ms.append(elapsed_ms)
                run.batch_sizes.append(body["batch_size"])
                for name, value in body["timings"].items():
                    run.timings.setdefault(name, []).append(value)

        started = time.perf_counter()
        await asyncio.gather(*(one_client(slot) for slot in range(args.clients)))
        if run is not None:
            seconds = time.perf_counter() - started
            run.seconds += seconds
            run.round_ips.append(total / seconds)


def measure_throughput(
    servers: dict[str, ServerProcess], args: argparse.Namespace
) -> dict[str, Run]:
    runs = {name: Run() for name in servers}
    for server in servers.values():
        asyncio.run(closed_loop(server.url, args, 2 * args.clients, None))  # warm-up
    for index in range(args.rounds):
        order = [OFF, ON] if index % 2 == 0 else [ON, OFF]  # no config always first
        for name in order:
            with console.status(f"round {index + 1}/{args.rounds}: batching {name}"):
                asyncio.run(closed_loop(servers[name].url, args, args.requests, runs[name]))
    return runs


def measure_adapters(server: ServerProcess, args: argparse.Namespace) -> dict[str, Run]:
    """The batching-ON server under each adapter case, rounds rotating the order."""
    runs = {case: Run() for case in ADAPTER_CASES}
    for case in ADAPTER_CASES[1:]:  # loads the adapters; not counted
        asyncio.run(closed_loop(server.url, args, 2 * args.clients, None, case))
    for index in range(args.rounds):
        shift = index % len(ADAPTER_CASES)
        for case in ADAPTER_CASES[shift:] + ADAPTER_CASES[:shift]:
            with console.status(f"adapters round {index + 1}/{args.rounds}: {case}"):
                asyncio.run(closed_loop(server.url, args, args.requests, runs[case], case))
    return runs


def measure_lone(servers: dict[str, ServerProcess], args: argparse.Namespace) -> dict[str, Run]:
    """One client, sequential requests, on each server; short rounds alternate the order,
    so that the machine's drift falls on both alike."""
    lone = argparse.Namespace(**{**vars(args), "clients": 1})
    runs = {name: Run() for name in (OFF, ON)}
    rounds = LONE_ROUNDS_PER_ROUND * args.rounds
    for index in range(rounds):
        for name in [OFF, ON] if index % 2 == 0 else [ON, OFF]:
            with console.status(f"lone client round {index + 1}/{rounds}: batching {name}"):
                asyncio.run(closed_loop(servers[name].url, lone, args.lone, runs[name]))
    return runs


# ---- the service's overhead over a bare pipeline -------------------------------------------
@dataclass
class Single:
    label: str
    times_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)  # as the service reported
    server_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90(self) -> float:
        return percentile(self.times_ms, 90)


class BarePipeline:
    """The same request as a bare in-process pipeline call (diffusers' own loader, the
    service's folder), and that call plus the PNG + base64 encoding the service does (easel's
    codec at the service's default level)."""

    def __init__(self, data_dir: Path, args: argparse.Namespace) -> None:
        import diffusers
        import torch
        import transformers
        from diffusers import DiffusionPipeline

        from easel.core.images import ImageCodec, OutputFormat

        self.torch, self.args, self.png = torch, args, OutputFormat.PNG
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        self.pipe = DiffusionPipeline.from_pretrained(str(data_dir / "models" / MODEL))
        self.pipe.set_progress_bar_config(disable=True)
        self.codec = ImageCodec(max_bytes=1 << 30, max_pixels=1 << 30)
        self.body = request_body(args, 0, 0)

    def run(self) -> tuple[float, float]:
        torch, args = self.torch, self.args
        started = time.perf_counter()
        with torch.inference_mode():
            image = self.pipe(
                prompt=[self.body["prompt"]],
                width=args.size,
                height=args.size,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                generator=[torch.Generator("cpu").manual_seed(self.body["seed"])],
                output_type="pil",
            ).images[0]
        called = time.perf_counter()
        self.codec.encode_base64(image, self.png)
        done = time.perf_counter()
        return (called - started) * 1000, (done - started) * 1000


def measure_single(
    servers: dict[str, ServerProcess], data_dir: Path, args: argparse.Namespace
) -> list[Single]:
    """One request at a time, interleaved (bare, OFF, ON, bare, ...) so that drift in the
    machine's load falls on every path alike."""
    bare = BarePipeline(data_dir, args)
    rows = {
        "bare": Single("bare pipeline call"),
        "encoded": Single("bare call + PNG + base64"),
        OFF: Single("HTTP, batching OFF (no window)"),
        ON: Single(f"HTTP, batching ON ({args.window_ms:g} ms window)"),
    }
    body = request_body(args, 0, 0)
    clients = {name: httpx.Client(base_url=servers[name].url, timeout=120) for name in (OFF, ON)}
    try:
        for index in range(args.single + 3):
            called_ms, encoded_ms = bare.run()
            answers = {}
            for name, client in clients.items():
                sent = time.perf_counter()
                response = client.post("/api/generate", json=body)
                answers[name] = ((time.perf_counter() - sent) * 1000, response)
            if index < 3:  # warm-up
                continue
            rows["bare"].times_ms.append(called_ms)
            rows["encoded"].times_ms.append(encoded_ms)
            for name, (elapsed_ms, response) in answers.items():
                response.raise_for_status()
                answer = response.json()
                assert answer["batch_size"] == 1
                rows[name].times_ms.append(elapsed_ms)
                rows[name].inference_ms.append(answer["timings"]["inference_ms"])
                rows[name].server_ms.append(answer["timings"]["total_ms"])
    finally:
        for client in clients.values():
            client.close()
    return list(rows.values())


# ---- reporting -----------------------------------------------------------------------------
def throughput_table(runs: dict[str, Run], args: argparse.Namespace) -> Table:
    table = Table(
        title=f"{args.clients} concurrent clients, {args.size}x{args.size}, {args.steps} steps, "
        f"CFG {args.guidance}: {args.requests} requests x {args.rounds} rounds each",
        title_justify="left",
    )
    columns = (
        "batching",
        "images/s",
        "per round",
        "p50 ms",
        "p99 ms",
        "mean batch",
        "svc queue ms",
        "svc infer ms",
        "svc encode ms",
        "svc total ms",
        "errors",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "batching" else "right")
    for name, run in runs.items():
        label = f"ON ({args.window_ms:g} ms, <= {args.max_images})" if name == ON else "OFF (max 1)"
        table.add_row(
            label,
            f"{run.images_per_s:.1f}",
            " / ".join(f"{x:.1f}" for x in run.round_ips),
            f"{percentile(run.latencies_ms, 50):.1f}",
            f"{percentile(run.latencies_ms, 99):.1f}",
            f"{statistics.fmean(run.batch_sizes):.2f}" if run.batch_sizes else "-",
            f"{run.mean_timing('queue_wait_ms'):.1f}",
            f"{run.mean_timing('inference_ms'):.1f}",
            f"{run.mean_timing('encode_ms'):.1f}",
            f"{run.mean_timing('total_ms'):.1f}",
            str(run.errors),
        )
    return table


def adapters_table(runs: dict[str, Run], args: argparse.Namespace) -> Table:
    baseline = runs[NO_LORA]
    table = Table(
        title=f"Adapter sets, batching ON ({args.window_ms:g} ms, <= {args.max_images}), "
        f"{args.clients} clients: {args.requests} requests x {args.rounds} rounds each",
        title_justify="left",
    )
    columns = ("requests", "images/s", "/ no LoRA", "p50 ms", "p99 ms", "mean batch",
               "svc infer ms", "errors")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "requests" else "right")
    for case, run in runs.items():
        table.add_row(
            case,
            f"{run.images_per_s:.1f}",
            f"{run.images_per_s / baseline.images_per_s:.2f}x",
            f"{percentile(run.latencies_ms, 50):.1f}",
            f"{percentile(run.latencies_ms, 99):.1f}",
            f"{statistics.fmean(run.batch_sizes):.2f}" if run.batch_sizes else "-",
            f"{run.mean_timing('inference_ms'):.1f}",
            str(run.errors),
        )
    return table


def lone_table(runs: dict[str, Run], args: argparse.Namespace) -> Table:
    off_p50 = percentile(runs[OFF].latencies_ms, 50)
    table = Table(
        title=f"One client, sequential requests, {args.size}x{args.size}, {args.steps} steps: "
        f"{args.lone} requests x {LONE_ROUNDS_PER_ROUND * args.rounds} rounds each",
        title_justify="left",
    )
    columns = ("batching", "p50 ms", "p90 ms", "p50 / OFF", "mean batch", "svc queue ms", "errors")
    for column in columns:
        table.add_column(column, justify="left" if column == "batching" else "right")
    for name, run in runs.items():
        p50 = percentile(run.latencies_ms, 50)
        table.add_row(
            f"ON ({args.window_ms:g} ms, <= {args.max_images})" if name == ON else "OFF (max 1)",
            f"{p50:.1f}",
            f"{percentile(run.latencies_ms, 90):.1f}",
            f"{p50 / off_p50:.2f}x",
            f"{statistics.fmean(run.batch_sizes):.2f}" if run.batch_sizes else "-",
            f"{run.mean_timing('queue_wait_ms'):.1f}",
            str(run.errors),
        )
    return table


def overhead_table(rows: Sequence[Single], args: argparse.Namespace) -> Table:
    bare = rows[0]
    table = Table(
        title=f"One request at a time (batch of 1), {args.size}x{args.size}, {args.steps} steps: "
        f"median of {args.single}, interleaved",
        title_justify="left",
    )
    columns = ("path", "median ms", "p90 ms", "minus bare ms", "/ bare",
               "svc infer ms", "svc total ms")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in rows:
        table.add_row(
            row.label,
            f"{row.median:.1f}",
            f"{row.p90:.1f}",
            "-" if row is bare else f"{row.median - bare.median:+.1f}",
            "-" if row is bare else f"{row.median / bare.median:.2f}x",
            f"{statistics.median(row.inference_ms):.1f}" if row.inference_ms else "-",
            f"{statistics.median(row.server_ms):.1f}" if row.server_ms else "-",
        )
    return table


# ---- main ----------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument(
        "--requests", type=int, default=240, help="requests per round and configuration (240)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (2)")
    parser.add_argument("--size", type=int, default=128, help="width = height (128)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps (4)")
    parser.add_argument("--guidance", type=float, default=5.0, help="CFG scale (5.0)")
    parser.add_argument("--window-ms", type=float, default=25.0, help="ON: batch window (25)")
    parser.add_argument("--max-images", type=int, default=8, help="ON: images per call (8)")
    parser.add_argument(
        "--lone", type=int, default=20, help="lone client: requests per round and server (20)"
    )
    parser.add_argument(
        "--single", type=int, default=40, help="one-at-a-time repeats for the overhead (40)"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="EASEL_DATA_DIR for both servers (default: a temp dir)"
    )
    parser.add_argument(
        "--wait", type=float, default=900, help="wait this long for other benchmarks (900 s)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def run_json(run: Run) -> dict[str, Any]:
    return {
        "images_per_s": run.images_per_s,
        "round_images_per_s": run.round_ips,
        "p50_ms": percentile(run.latencies_ms, 50),
        "p99_ms": percentile(run.latencies_ms, 99),
        "mean_batch_size": statistics.fmean(run.batch_sizes) if run.batch_sizes else None,
        "mean_timings_ms": {k: statistics.fmean(v) for k, v in run.timings.items()},
        "errors": run.errors,
    }


def report_json(
    runs: dict[str, Run],
    adapters: dict[str, Run],
    lone: dict[str, Run],
    singles: Sequence[Single],
    machine: str,
    interference: str,
) -> dict[str, Any]:
    baseline = adapters[NO_LORA].images_per_s
    return {
        "machine": machine,
        "interference": interference,
        "throughput": {name: run_json(run) for name, run in runs.items()},
        "adapters": {
            case: {**run_json(run), "ratio_to_no_lora": run.images_per_s / baseline}
            for case, run in adapters.items()
        },
        "lone_client": {
            **{name: run_json(run) for name, run in lone.items()},
            "p50_on_over_off": percentile(lone[ON].latencies_ms, 50)
            / percentile(lone[OFF].latencies_ms, 50),
        },
        "single": {
            s.label: {
                "median_ms": s.median,
                "p90_ms": s.p90,
                "service_inference_ms": statistics.median(s.inference_ms)
                if s.inference_ms
                else None,
                "service_total_ms": statistics.median(s.server_ms) if s.server_ms else None,
            }
            for s in singles
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stops the servers
    wait_for_quiet_machine(args.wait, console)
    machine = machine_line()
    console.print(machine)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="easel-bench-gen-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = args.data_dir or tmp / "data"
        with running_servers(tmp, data_dir, args) as servers:
            watch = CpuWatch([s.process.pid for s in servers.values()])
            runs = measure_throughput(servers, args)
            console.print(throughput_table(runs, args))
            ratio = runs[ON].images_per_s / runs[OFF].images_per_s
            console.print(f"batching ON / OFF: [bold]{ratio:.2f}x[/] images/s")
            # Before the adapter rounds: their LoRAs stay loaded in the ON server's model,
            # which slows its every call, so a comparison with OFF after them is unfair.
            lone = measure_lone(servers, args)
            console.print(lone_table(lone, args))
            lone_ratio = percentile(lone[ON].latencies_ms, 50) / percentile(
                lone[OFF].latencies_ms, 50
            )
            console.print(f"lone client p50 ON / OFF: [bold]{lone_ratio:.2f}x[/]")
            with console.status("one request at a time"):
                singles = measure_single(servers, data_dir, args)
            console.print(overhead_table(singles, args))
            adapters = measure_adapters(servers[ON], args)
            console.print(adapters_table(adapters, args))
            every = [*runs.items(), *adapters.items(), *(("lone " + n, r) for n, r in lone.items())]
            for name, run in every:
                if run.first_error:
                    console.print(f"  first error ({name}): {run.first_error[:300]}")
            share, interference = watch.report()
    colour = "red" if share > INTERFERENCE_WARN else "dim"
    console.print(f"took {time.monotonic() - started:.0f} s; [{colour}]{interference}[/]")
    if args.json:
        args.json.write_text(
            json.dumps(report_json(runs, adapters, lone, singles, machine, interference), indent=2)
        )
    failed = [*runs.values(), *adapters.values(), *lone.values()]
    return 1 if any(run.errors for run in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
