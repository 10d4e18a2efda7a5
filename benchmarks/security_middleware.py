"""What API keys and rate limits cost per request, the gateway's own code alone.

The gateway's key check (`ApiKeyMiddleware`) and rate limits (`RateLimitMiddleware`, the
in-process counters) wrap an app that answers at once, and are called directly, with no
HTTP, network or other process: the microseconds they add, against the same stack open,
measured in one run in alternating rounds. `gateway_overhead.py --security` measures the
whole gateway; on a small machine its noise is larger than what this script finds.

    .venv/bin/python benchmarks/security_middleware.py [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine_line  # noqa: E402

from easel.core.identity import current_caller  # noqa: E402
from easel.core.internal_auth import outbound_headers  # noqa: E402
from easel.gateway.auth.config import access_policy, key_store  # noqa: E402
from easel.gateway.auth.metrics import AuthMetrics  # noqa: E402
from easel.gateway.auth.middleware import ApiKeyMiddleware  # noqa: E402
from easel.gateway.client_address import TrustedProxies  # noqa: E402
from easel.gateway.rate_limits import RateLimitMiddleware, RateLimitPolicy, RateLimits  # noqa: E402
from easel.gateway.rate_limits_store import RateLimitStore  # noqa: E402
from easel.gateway.settings import GatewaySettings  # noqa: E402

KEY = "easel-benchmark-key-0123456789abcdef"
TARGET_ADDED_US = 200.0  # the 0.2 ms
VARIANTS = {
    "open": (False, False),
    "keys": (True, False),
    "limits": (False, True),
    "both": (True, True),
}
console = Console(width=110)


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """What the proxy would do with the caller (its header), then a 200."""
    outbound_headers(None, current_caller())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def stack(data_dir: Path, *, keys: bool, limits: bool) -> ASGIApp:
    """The two middlewares in the gateway's order (auth outside, limits inside)."""
    settings = GatewaySettings(
        data_dir=data_dir,
        api_keys=SecretStr(KEY) if keys else None,
        rate_limits=limits,
        rate_limit_utils=10**9,  # every request counted, none refused
    )
    app: ASGIApp = answer
    if limits:
        policy = RateLimitPolicy.for_gateway(settings, settings.host)
        counters = RateLimits(
            policy=policy,
            store=RateLimitStore(),
            proxies=TrustedProxies([]),
            registry=CollectorRegistry(),
        )
        app = RateLimitMiddleware(app, limits=counters)
    store = key_store(settings)
    store.load()
    return ApiKeyMiddleware(
        app, store=store, policy=access_policy(settings), metrics=AuthMetrics(CollectorRegistry())
    )


async def per_request_us(app: ASGIApp, headers: list[tuple[bytes, bytes]], requests: int) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}"}

    async def send(message: Message) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/image-utils/crop",
            "headers": headers,
            "client": ("198.51.100.7", 50000),
            "query_string": b"",
        }
        await app(scope, receive, send)
    return (time.perf_counter() - started) / requests * 1e6


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    base = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    keyed = [*base, (b"authorization", f"Bearer {KEY}".encode())]
    with tempfile.TemporaryDirectory(prefix="easel-bench-") as tmp:
        apps = {
            name: stack(Path(tmp), keys=keys, limits=limits)
            for name, (keys, limits) in VARIANTS.items()
        }
        results: dict[str, list[float]] = {name: [] for name in apps}
        for index in range(rounds):
            names = list(apps)
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                headers = keyed if VARIANTS[name][0] else base
                await per_request_us(apps[name], headers, requests // 10)  # warm
                results[name].append(await per_request_us(apps[name], headers, requests))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    args = parser.parse_args(argv)
    console.print(machine_line(with_torch=False))
    results = asyncio.run(measure(args.requests, args.rounds))
    baseline = statistics.median(results["open"])
    table = Table(title="Key check and rate limits, called directly (us per request)")
    for column in (
        "stack",
        "median",
        "best",
        "x open",
        "added",
        f"added <= {TARGET_ADDED_US:g} us",
    ):
        table.add_column(column, justify="left" if column == "stack" else "right")
    for name, values in results.items():
        median = statistics.median(values)
        added = median - baseline
        met = (
            "-"
            if name == "open"
            else ("[green]yes[/]" if added <= TARGET_ADDED_US else "[red]no[/]")
        )
        table.add_row(
            name,
            f"{median:.2f}",
            f"{min(values):.2f}",
            f"{median / baseline:.2f}",
            f"{added:+.2f}",
            met,
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
