"""What the gateway hop costs: the same requests sent straight to a service and through it.

One run starts the image-utils service as its own process (split mode) and one gateway
process per upstream client (`EASEL_UPSTREAM_CLIENT=httptools`, the default, `=aiohttp` and
`=httpx`), all pointing at
that one service. For each case it sends the same request N times from C concurrent
keep-alive clients, directly to the service and through each gateway, alternating the order
over a few rounds, then prints requests/s, p50, p90 and p99 for each, the gateway/direct
throughput ratio and the latency the hop adds. It runs at C=50 (throughput; on 2 cores
latency there is mostly queueing) and at C=1 (the pure per-hop latency).

The load comes from benchmarks/_loadgen.py in its own process (uvloop + httptools, a few
tens of microseconds per request), so the client does not share an event loop with a server.

    .venv/bin/python benchmarks/gateway_overhead.py            # or: make bench
    .venv/bin/python benchmarks/gateway_overhead.py --cases small --rounds 3 -c 50

`--security` compares, beside the direct calls, the default gateway as it is against the
same gateway with an API key required and rate limits on (limits high enough never to
refuse): what authentication and limiting cost per request.

    .venv/bin/python benchmarks/gateway_overhead.py --security --cases small --rounds 4

Where nginx is installed (Debian: `apt-get install nginx`), the run adds it as a reference
target: nginx started by the script (`benchmarks/_nginx.py`) as a reverse proxy in front
of the same service, so the easel hop is compared with a proxy written in C, in the same
run. `--no-nginx` leaves it out.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import busy_cpu_seconds, machine_line  # noqa: E402
from _nginx import nginx_binary, start_nginx  # noqa: E402

from tests.support.servers import ServerProcess, start_server  # noqa: E402

LOADGEN = Path(__file__).with_name("_loadgen.py")
CLIENTS = ("httptools", "aiohttp", "httpx")
DEFAULT_CLIENT = "httptools"  # EASEL_UPSTREAM_CLIENT's default
DIRECT = "direct"
SECURED = "secured"  # the default gateway with an API key and rate limits
# A second, identical open default gateway: how far two processes of the same code differ
# here, the floor below which the secured gateway's difference is not measurable.
CONTROL = "control"
BENCH_KEY = "easel-benchmark-key-0123456789abcdef"
SECURED_ENV = {
    "EASEL_UPSTREAM_CLIENT": DEFAULT_CLIENT,
    "EASEL_API_KEYS": BENCH_KEY,
    "EASEL_RATE_LIMITS": "true",
    # Far above what the load reaches: every request is counted, none refused.
    "EASEL_RATE_LIMIT_UTILS": "100000000",
}
HEADERS = {SECURED: (f"Authorization: Bearer {BENCH_KEY}",)}
NGINX = "nginx"  # the reference proxy, where installed
NOT_EASEL = (DIRECT, SECURED, CONTROL, NGINX)  # targets that are no plain easel gateway

# Issue 22's targets, for the small JSON case on a 2-core machine.
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 5.0
TARGET_RPS_RATIO = 0.8
TARGET_GATEWAY_CPU_MS = 0.5  # gateway CPU per request, at the high concurrency
# Issue 17: what keys and rate limits may add to the gateway (small JSON case).
TARGET_SECURED_ADDED_P50_MS = 0.2
TARGET_SECURED_RPS_RATIO = 0.9
INTERFERENCE_WARN = 0.05  # other processes' share of the machine above which to warn

console = Console(width=132)


# ---- request bodies ----------------------------------------------------------------------
def _png_b64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


def _noise(side: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


def small_body() -> bytes:
    """Crop an 8x8 PNG to 4x4: a ~400 B JSON request, a ~230 B JSON answer."""
    return json.dumps(
        {"image": _png_b64(_noise(8)), "x": 2, "y": 2, "width": 4, "height": 4}
    ).encode()


def _big_png_b64() -> str:
    # Noise does not compress: 836 x 836 x 3 bytes is a ~2.0 MB PNG, ~2.8 MB as base64.
    return _png_b64(_noise(836))


def upload_body() -> bytes:
    """Crop a ~2 MB PNG to 8x8: a ~2.8 MB request, a small answer."""
    return json.dumps({"image": _big_png_b64(), "x": 0, "y": 0, "width": 8, "height": 8}).encode()


def convert_body() -> bytes:
    """Re-encode a ~2 MB PNG as PNG: ~2.8 MB each way."""
    return json.dumps({"image": _big_png_b64(), "output_format": "png"}).encode()


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    describe: str
    body: bytes
    requests: int  # at the high concurrency
    requests_single: int  # at concurrency 1


def build_cases(names: Sequence[str], scale: float) -> list[Case]:
    def n(count: int) -> int:
        return max(10, round(count * scale))

    table = {
        "small": lambda: Case(
            "small",
            "/api/image-utils/crop",
            "small JSON: crop 8x8 PNG",
            small_body(),
            n(4000),
            n(1000),
        ),
        "upload": lambda: Case(
            "upload",
            "/api/image-utils/crop",
            "2 MB upload: crop a 2 MB PNG to 8x8",
            upload_body(),
            n(200),
            n(40),
        ),
        "convert": lambda: Case(
            "convert",
            "/api/image-utils/convert",
            "2 MB both ways: convert a 2 MB PNG to PNG",
            convert_body(),
            n(100),
            n(20),
        ),
    }
    return [table[name]() for name in names]


# ---- measuring ---------------------------------------------------------------------------
@dataclass
class Measurement:
    """All rounds of one (case, concurrency, target), pooled."""

    requests: int = 0
    errors: int = 0
    warmup_errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    round_rps: list[float] = field(default_factory=list)
    round_p50_ms: list[float] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    # CPU seconds the servers spent, and the requests (warm-up included) they spent it on.
    service_cpu: float = 0.0
    gateway_cpu: float = 0.0
    served: int = 0

    def cpu_ms(self, seconds: float) -> str:
        return f"{seconds / self.served * 1000:.2f}" if self.served and seconds else "-"

    def add(self, result: dict[str, object]) -> None:
        self.requests += int(result["requests"])  # type: ignore[call-overload]
        self.errors += int(result["errors"])  # type: ignore[call-overload]
        self.warmup_errors += int(result.get("warmup_errors", 0))  # type: ignore[call-overload]
        self.seconds += float(result["seconds"])  # type: ignore[arg-type]
        self.latencies_ms.extend(result["latencies_ms"])  # type: ignore[arg-type]
        self.round_rps.append(float(result["rps"]))  # type: ignore[arg-type]
        ordered = sorted(result["latencies_ms"])  # type: ignore[type-var]
        self.round_p50_ms.append(float(ordered[len(ordered) // 2]) if ordered else float("nan"))
        for code, count in result["status"].items():  # type: ignore[attr-defined]
            self.status[code] = self.status.get(code, 0) + count
        self.first_error = self.first_error or str(result.get("first_error") or "")

    @property
    def errors_text(self) -> str:
        text = str(self.errors)
        if self.errors:
            codes = ", ".join(f"{c}: {n}" for c, n in sorted(self.status.items()) if c != "200")
            text += f" ({codes})"
        if self.warmup_errors:
            text += f" +{self.warmup_errors} in warm-up"
        return text

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[rank]


def run_load(
    url: str,
    body_file: Path,
    *,
    requests: int,
    concurrency: int,
    headers: Sequence[str] = (),
) -> dict[str, object]:
    warmup = max(concurrency, min(200, requests // 10))
    header_args = [arg for header in headers for arg in ("--header", header)]
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(LOADGEN),
            url,
            str(body_file),
            "-n",
            str(requests),
            "-c",
            str(concurrency),
            "--warmup",
            str(warmup),
            *header_args,
        ],
        capture_output=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed on {url}:\n{completed.stderr.decode()}")
    result: dict[str, object] = json.loads(completed.stdout)
    return result


# ---- servers -----------------------------------------------------------------------------
@contextmanager
def running_servers(
    tmp: Path, clients: Sequence[str], *, secured: bool = False, nginx: str | None = None
) -> Iterator[dict[str, ServerProcess]]:
    """The service and one gateway per client (and the secured one, and nginx from the
    binary `nginx`); every process is stopped on the way out."""
    with ExitStack() as stack:
        servers: dict[str, ServerProcess] = {}
        service = start_server("image-utils", tmp)
        stack.callback(service.stop)
        servers[DIRECT] = service
        for client in clients:
            # The hop alone: the load would pass the default rate limits (3000 a minute).
            env = {
                "EASEL_IMAGE_UTILS_URL": service.url,
                "EASEL_UPSTREAM_CLIENT": client,
                "EASEL_RATE_LIMITS": "false",
            }
            for target in (client, CONTROL) if secured else (client,):
                gateway = start_server("gateway", tmp, env)
                stack.callback(gateway.stop)
                servers[target] = gateway
        if secured:
            gateway = start_server(
                "gateway", tmp, {"EASEL_IMAGE_UTILS_URL": service.url, **SECURED_ENV}
            )
            stack.callback(gateway.stop)
            servers[SECURED] = gateway
        if nginx is not None:
            proxy = start_nginx(nginx, service.url, tmp)
            stack.callback(proxy.stop)
            servers[NGINX] = proxy
        yield servers


# ---- reporting ---------------------------------------------------------------------------
def _label(target: str) -> str:
    if target == SECURED:
        return f"gw/{DEFAULT_CLIENT}+keys+limits"
    if target == CONTROL:
        return f"gw/{DEFAULT_CLIENT} (again)"
    if target == NGINX:
        return "nginx"
    return "direct" if target == DIRECT else f"gw/{target}"


def result_table(case: Case, concurrency: int, results: dict[str, Measurement]) -> Table:
    direct = results[DIRECT]
    table = Table(
        title=f"{case.describe} | C={concurrency} | {direct.requests} requests per target"
        " | latencies and CPU in ms",
        title_justify="left",
    )
    columns = ("target", "req/s", "by round", "p50", "p90", "p99", "errors")
    # "gw CPU/req" is the proxy's: the gateway's process, or nginx's.
    for column in (*columns, "x direct", "+p50", "+p99", "svc CPU/req", "gw CPU/req"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for target, m in results.items():
        row = [
            _label(target),
            f"{m.rps:,.1f}",
            "/".join(f"{r:,.0f}" if r >= 100 else f"{r:.1f}" for r in m.round_rps),
            f"{m.percentile(50):.2f}",
            f"{m.percentile(90):.2f}",
            f"{m.percentile(99):.2f}",
            m.errors_text,
        ]
        if target == DIRECT:
            row += ["1.00", "-", "-"]
        else:
            row += [
                f"{m.rps / direct.rps:.2f}",
                f"{m.percentile(50) - direct.percentile(50):+.2f}",
                f"{m.percentile(99) - direct.percentile(99):+.2f}",
            ]
        table.add_row(*row, m.cpu_ms(m.service_cpu), m.cpu_ms(m.gateway_cpu))
    return table


def targets_table(
    single: dict[str, Measurement], loaded: dict[str, Measurement], concurrency: int
) -> Table:
    table = Table(title="Targets (small JSON case)", title_justify="left")
    for column in ("client", "target", "measured", "met"):
        table.add_column(column)
    d1, dc = single[DIRECT], loaded[DIRECT]
    proxies = [t for t in single if t not in NOT_EASEL] + ([NGINX] if NGINX in single else [])
    for client in proxies:
        added_p50 = single[client].percentile(50) - d1.percentile(50)
        added_p99 = single[client].percentile(99) - d1.percentile(99)
        ratio = loaded[client].rps / dc.rps
        cpu = loaded[client].gateway_cpu / loaded[client].served * 1000
        checks = [
            (f"added p50 <= {TARGET_ADDED_P50_MS} ms (C=1)", f"{added_p50:+.2f} ms",
             added_p50 <= TARGET_ADDED_P50_MS),
            (f"added p99 <= {TARGET_ADDED_P99_MS} ms (C=1)", f"{added_p99:+.2f} ms",
             added_p99 <= TARGET_ADDED_P99_MS),
            (f"throughput >= {TARGET_RPS_RATIO}x direct (C={concurrency})", f"{ratio:.2f}x",
             ratio >= TARGET_RPS_RATIO),
            (f"proxy CPU <= {TARGET_GATEWAY_CPU_MS} ms/request (C={concurrency})",
             f"{cpu:.2f} ms", cpu <= TARGET_GATEWAY_CPU_MS),
        ]  # fmt: skip
        for name, measured, met in checks:
            label = f"{client} (reference)" if client == NGINX else client
            table.add_row(label, name, measured, "[green]yes[/]" if met else "[red]no[/]")
    return table


def security_table(
    single: dict[str, Measurement], loaded: dict[str, Measurement], concurrency: int
) -> Table:
    """The secured gateway against the same gateway open (small JSON case)."""
    table = Table(title="Targets: keys and rate limits on vs off", title_justify="left")
    for column in ("target", "measured", "met"):
        table.add_column(column)
    open_gw = DEFAULT_CLIENT
    pooled = single[SECURED].percentile(50) - single[open_gw].percentile(50)
    # On 2 cores a round's p50 moves by more than the difference sought, and two processes
    # of the same code differ too (the control): the median of the rounds' differences is
    # the steadier figure, and the control's says how much of it is placement.
    paired = _median_difference(single[SECURED], single[open_gw])
    floor = _median_difference(single[CONTROL], single[open_gw])
    ratio = loaded[SECURED].rps / loaded[open_gw].rps
    control_ratio = loaded[CONTROL].rps / loaded[open_gw].rps
    checks = [
        (f"added p50 <= {TARGET_SECURED_ADDED_P50_MS} ms (C=1, median of rounds)",
         f"{paired:+.3f} ms (pooled {pooled:+.3f})", paired <= TARGET_SECURED_ADDED_P50_MS),
        (f"throughput >= {TARGET_SECURED_RPS_RATIO}x open gateway (C={concurrency})",
         f"{ratio:.3f}x", ratio >= TARGET_SECURED_RPS_RATIO),
    ]  # fmt: skip
    for name, measured, met in checks:
        table.add_row(name, measured, "[green]yes[/]" if met else "[red]no[/]")
    table.add_row(
        "noise floor: the same open gateway, another process",
        f"{floor:+.3f} ms, {control_ratio:.3f}x",
        "-",
    )
    return table


def _median_difference(measured: Measurement, baseline: Measurement) -> float:
    """The median over rounds of the p50 difference: the two ran back to back each round."""
    rounds = zip(measured.round_p50_ms, baseline.round_p50_ms, strict=True)
    return statistics.median([one - other for one, other in rounds])


def _own_cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (servers, load generators)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def interference(busy_before: float, own_before: float, wall: float) -> tuple[float, str]:
    """The share of the machine other processes used during the run, and a line saying so."""
    others = max(0.0, (busy_cpu_seconds() - busy_before) - (_own_cpu_seconds() - own_before))
    share = others / (wall * (os.cpu_count() or 1))
    line = f"other processes used {others:.0f} CPU-s during the run ({share:.0%} of the machine)"
    if share > INTERFERENCE_WARN:
        line += ": these figures are disturbed, run again on a quiet machine"
    return share, line


def cpu_seconds(server: ServerProcess) -> float:
    """User + system CPU time of a server process so far, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- main --------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        default="small,upload,convert",
        help="comma-separated, of: small, upload, convert (default: all)",
    )
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="gateway upstream clients to compare, of: httptools, aiohttp, httpx (default: all)",
    )
    parser.add_argument("-c", "--concurrency", type=int, default=50, help="default: 50")
    parser.add_argument(
        "--no-single", action="store_true", help="skip the concurrency-1 (per-hop latency) runs"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default: 2)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every case's request count (default 1: small 4000/1000 at C/1, "
        "upload 200/40, convert 100/20)",
    )
    parser.add_argument(
        "--security",
        action="store_true",
        help="compare the default gateway open against it with an API key and rate limits "
        f"(implies --clients {DEFAULT_CLIENT})",
    )
    parser.add_argument(
        "--no-nginx",
        action="store_true",
        help="leave out the nginx reference proxy (used by default where nginx is installed)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if args.security:
        args.clients = [DEFAULT_CLIENT]
    for case in args.cases:
        if case not in ("small", "upload", "convert"):
            parser.error(f"unknown case {case!r}")
    for client in args.clients:
        if client not in CLIENTS:
            parser.error(f"unknown client {client!r}")
    return args


def measure(
    servers: dict[str, ServerProcess], case: Case, body_file: Path, concurrency: int, rounds: int
) -> dict[str, Measurement]:
    targets = list(servers)
    results = {target: Measurement() for target in targets}
    requests = case.requests if concurrency > 1 else case.requests_single
    for index in range(rounds):
        # Rotate the order each round so no target always runs first (or after the slowest).
        shift = index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            url = servers[target].url + case.path
            service_before, gateway_before = (
                cpu_seconds(servers[DIRECT]),
                cpu_seconds(servers[target]),
            )
            with console.status(f"{case.name} C={concurrency} round {index + 1}: {target}"):
                result = run_load(
                    url,
                    body_file,
                    requests=requests,
                    concurrency=concurrency,
                    headers=HEADERS.get(target, ()),
                )
            m = results[target]
            m.add(result)
            m.served += int(result["requests"]) + int(result["warmup_requests"])  # type: ignore[call-overload]
            m.service_cpu += cpu_seconds(servers[DIRECT]) - service_before
            if target != DIRECT:
                m.gateway_cpu += cpu_seconds(servers[target]) - gateway_before
    return results


def run_case(
    servers: dict[str, ServerProcess], case: Case, tmp: Path, levels: Sequence[int], rounds: int
) -> dict[int, dict[str, Measurement]]:
    body_file = tmp / f"{case.name}.json"
    body_file.write_bytes(case.body)
    console.print(f"\n[bold]{case.describe}[/]: POST {case.path}, request {len(case.body):,} B")
    by_level: dict[int, dict[str, Measurement]] = {}
    for concurrency in levels:
        results = by_level[concurrency] = measure(servers, case, body_file, concurrency, rounds)
        console.print(result_table(case, concurrency, results))
        for target, m in results.items():
            if m.first_error:
                console.print(f"  first error via {target}: {m.first_error[:300]}")
    return by_level


def figures(by_level: dict[int, dict[str, Measurement]]) -> dict[str, object]:
    """One case's figures for --json: concurrency -> target -> numbers."""
    return {
        str(concurrency): {
            target: {
                "requests": m.requests,
                "errors": m.errors,
                "warmup_errors": m.warmup_errors,
                "status": m.status,
                "rps": m.rps,
                "round_rps": m.round_rps,
                "round_p50_ms": m.round_p50_ms,
                "p50_ms": m.percentile(50),
                "p90_ms": m.percentile(90),
                "p99_ms": m.percentile(99),
                "service_cpu_ms_per_request": m.service_cpu / m.served * 1000 if m.served else None,
                "gateway_cpu_ms_per_request": m.gateway_cpu / m.served * 1000 if m.served else None,
            }
            for target, m in results.items()
        }
        for concurrency, results in by_level.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` still stops the servers: SystemExit unwinds through their cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    console.print(machine_line(with_torch=False))
    started = time.monotonic()
    busy_before, own_before = busy_cpu_seconds(), _own_cpu_seconds()
    levels = list(dict.fromkeys([args.concurrency] + ([] if args.no_single else [1])))
    cases: dict[str, object] = {}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="easel-bench-") as tmp_name:
        tmp = Path(tmp_name)
        nginx = None if args.no_nginx else nginx_binary()
        if nginx is None and not args.no_nginx:
            console.print("[dim]nginx is not installed: no reference proxy in this run[/]")
        with running_servers(tmp, args.clients, secured=args.security, nginx=nginx) as servers:
            for case in build_cases(args.cases, args.scale):
                by_level = run_case(servers, case, tmp, levels, args.rounds)
                errors += sum(
                    m.errors + m.warmup_errors for res in by_level.values() for m in res.values()
                )
                cases[case.name] = figures(by_level)
                if case.name == "small" and 1 in by_level and args.concurrency in by_level:
                    console.print(targets_table(by_level[1], by_level[args.concurrency],
                                                args.concurrency))  # fmt: skip
                    if args.security:
                        console.print(security_table(by_level[1], by_level[args.concurrency],
                                                     args.concurrency))  # fmt: skip
    wall = time.monotonic() - started
    share, line = interference(busy_before, own_before, wall)
    colour = "red" if share > INTERFERENCE_WARN else "dim"
    console.print(f"\ntook {wall:.0f} s; [{colour}]{line}[/]")
    if args.json:
        report = {"machine": machine_line(with_torch=False), "interference": line, "cases": cases}
        args.json.write_text(json.dumps(report, indent=2))
    if errors:
        console.print(f"[red]{errors} requests did not answer 200[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
