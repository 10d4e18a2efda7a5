"""Job machinery throughput and pickup latency, with a no-op generation service.

For each store (SQLite file, Redis server) and worker count (1, 4): submit N jobs through
`JobManager.submit` as fast as possible while N workers (each with its own store
connection, as separate worker processes would have) claim and run them against a
generation service that answers at once. Prints jobs/s from the first submit to the last
done, and pickup latency (created -> started) p50/p99. Everything runs in this process on
one event loop: the figures measure the store and worker code, not the network.

    .venv/bin/python benchmarks/jobs.py [--jobs 500] [--workers 1 4] [--stores sqlite redis]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.events import EventType
from easel.core.settings import Settings
from easel.jobs.manager import JobLimits, JobManager
from easel.jobs.models import Job, JobStatus
from easel.jobs.results import ResultFiles
from easel.jobs.store.base import JobStore
from easel.jobs.worker import Worker, WorkerConfig

TERMINAL_EVENTS = {str(event) for event in EventType if event.is_terminal}


def noop_generation() -> Starlette:
    """Answers the stream endpoint at once: queued, started, one step, a 1x1 result."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    pixel = base64.b64encode(buffer.getvalue()).decode()

    async def stream(request: Request) -> Response:
        body = await request.json()

        async def events() -> AsyncIterator[bytes]:
            result = {"images": [{"image": pixel, "seed": body.get("seed", 0), "format": "png",
                                  "media_type": "image/png", "width": 1, "height": 1}],
                      "seed": body.get("seed", 0)}  # fmt: skip
            for name, data in (
                ("queued", {"type": "queued", "position": 0}),
                ("started", {"type": "started", "batch_size": 1}),
                ("progress", {"type": "progress", "step": 1, "total": 1}),
                ("result", {"type": "result", "result": result}),
            ):
                yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/api/generate/stream", stream, methods=["POST"])])


async def open_store(kind: str, workdir: Path, redis_url: str | None, prefix: str) -> JobStore:
    if kind == "sqlite":
        from easel.jobs.store.sqlite import SQLiteJobStore

        return await SQLiteJobStore.open(workdir / "jobs.db")
    from easel.jobs.store.redis import RedisJobStore

    assert redis_url is not None
    return await RedisJobStore.connect(redis_url, prefix=prefix)


async def run_case(
    kind: str, workers: int, jobs: int, redis_url: str | None, poll: float
) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"easel-bench-{kind}-"))
    prefix = f"bench-{time.monotonic_ns()}"
    stores = [await open_store(kind, workdir, redis_url, prefix) for _ in range(workers + 1)]
    results = ResultFiles(workdir / "results")
    manager = JobManager(
        store=stores[0],
        results=results,
        limits=JobLimits(max_queued=jobs + 1, max_attempts=3, timeout_s=60, concurrency=workers),
    )
    generation = httpx.AsyncClient(
        transport=StreamingASGITransport(noop_generation()), base_url="http://noop"
    )
    config = WorkerConfig(concurrency=1, heartbeat_s=5, poll_interval_s=poll)
    # The workers say when a job ends (the hook webhooks use), so finding the end of the
    # burst costs the store nothing: polling it would compete with the workers.
    ended, burst_over = 0, asyncio.Event()

    async def on_event(job: Job, event: dict[str, Any]) -> None:
        nonlocal ended
        if event["type"] in TERMINAL_EVENTS:
            ended += 1
            if ended >= jobs:
                burst_over.set()

    running = [
        asyncio.create_task(
            Worker(
                store=store, results=results, generation=generation, config=config, notify=on_event
            ).run()
        )
        for store in stores[1:]
    ]
    # Throughput: a burst of jobs, from the first submit to the last end.
    started = time.perf_counter()
    for i in range(jobs):
        await manager.submit({"prompt": "x", "seed": i}, idempotency_key=None)
    await burst_over.wait()
    elapsed = time.perf_counter() - started
    # Pickup latency: one job at a time, so every worker is idle when it arrives.
    pickups = []
    for i in range(min(jobs, 200)):
        job = await manager.submit({"prompt": "y", "seed": i}, idempotency_key=None)
        while (current := await stores[0].get(job.id)) is None or current.started_at is None:
            await asyncio.sleep(0.0005)
        pickups.append((current.started_at - current.created_at) * 1000)
        while not (await stores[0].get(job.id)).status.is_terminal:  # type: ignore[union-attr]
            await asyncio.sleep(0.0005)
    counts = await stores[0].counts()
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    await generation.aclose()
    for store in stores:
        await store.close()
    shutil.rmtree(workdir, ignore_errors=True)
    pickups.sort()
    return {
        "jobs_per_s": jobs / elapsed,
        "pickup_p50_ms": statistics.median(pickups),
        "pickup_p99_ms": pickups[min(len(pickups) - 1, int(len(pickups) * 0.99))],
        "not_done": _ended(counts) - counts[JobStatus.DONE],  # must be 0: a no-op cannot fail
    }


def _ended(counts: dict[JobStatus, int]) -> int:
    return sum(number for status, number in counts.items() if status.is_terminal)


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",  # noqa: S607
         "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "redis"])
    parser.add_argument(
        "--poll",
        type=float,
        default=Settings().worker_poll_interval,
        help="an idle worker's wait between claims (EASEL_WORKER_POLL_INTERVAL)",
    )
    args = parser.parse_args()
    redis_process, redis_url = start_redis() if "redis" in args.stores else (None, None)
    table = Table(title=f"jobs: {args.jobs} no-op jobs per case, idle poll {args.poll * 1000:g} ms")
    for column in ("store", "workers", "jobs/s", "pickup p50 ms", "pickup p99 ms", "not done"):
        table.add_column(column, justify="right")
    try:
        for kind in args.stores:
            for workers in args.workers:
                figures = asyncio.run(run_case(kind, workers, args.jobs, redis_url, args.poll))
                table.add_row(
                    kind,
                    str(workers),
                    f"{figures['jobs_per_s']:.0f}",
                    f"{figures['pickup_p50_ms']:.1f}",
                    f"{figures['pickup_p99_ms']:.1f}",
                    f"{figures['not_done']:.0f}",
                )
    finally:
        if redis_process is not None:
            redis_process.terminate()
    Console().print(table)


if __name__ == "__main__":
    main()
