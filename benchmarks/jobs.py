"""Job machinery throughput and pickup latency, with a no-op generation service.

For each store (SQLite file, Redis server) and worker count (1, 4): submit N jobs through
`JobManager.submit` as fast as possible while the workers (each with its own store
connection) claim and run them against a generation service that answers at once. Prints
jobs/s from the first submit to the last done, and pickup latency (created -> started)
p50/p99.

Two layouts. `processes` (the default) is the one deployed: each worker is its own process,
as `easel worker` is, with the no-op generation service in its process (a stand-in for the
GPU service, without its network hop); this process is the job manager. `one-loop` runs the
manager and every worker on this process's one event loop, one core: the floor.

    .venv/bin/python benchmarks/jobs.py [--jobs 500] [--workers 1 4] [--stores sqlite redis]
                                        [--layouts processes one-loop]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import itertools
import json
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from rich.console import Console
from rich.table import Table
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.events import JobEvent, is_terminal
from easel.core.image_store import ImageStore
from easel.jobs.manager import JobLimits, JobManager
from easel.jobs.models import Job, JobStatus
from easel.jobs.settings import JobsSettings
from easel.jobs.store.base import JobStore
from easel.jobs.worker import Worker, WorkerConfig


def noop_generation() -> ASGIApp:
    """Answers the stream endpoint at once: queued, started, one step, a 1x1 result.

    A bare ASGI app: the generation service's own framework cost runs in its own process
    when deployed, so it is left out of the worker's share here."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    pixel = base64.b64encode(buffer.getvalue()).decode()
    headers = [(b"content-type", b"text/event-stream")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http" and scope["path"] == "/api/generate/stream"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seed = json.loads(body).get("seed", 0)
        result = {"images": [{"image": pixel, "seed": seed, "format": "png",
                              "media_type": "image/png", "width": 1, "height": 1}],
                  "seed": seed}  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for name, data in (
            ("queued", {"type": "queued", "position": 0}),
            ("started", {"type": "started", "batch_size": 1}),
            ("progress", {"type": "progress", "step": 1, "total": 1}),
            ("result", {"type": "result", "result": result}),
        ):
            event = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


@dataclass(frozen=True)
class StoreTarget:
    """Where the case's store lives: each worker, in any process, opens its own connection."""

    kind: str
    path: Path
    redis_url: str | None
    prefix: str

    async def open(self) -> JobStore:
        if self.kind == "sqlite":
            from easel.jobs.store.sqlite import SQLiteJobStore

            return await SQLiteJobStore.open(self.path)
        from easel.jobs.store.redis import RedisJobStore

        assert self.redis_url is not None
        return await RedisJobStore.connect(self.redis_url, prefix=self.prefix)


# Waits until the workers have ended this many jobs.
WaitEnded = Callable[[int], Awaitable[None]]


def start_worker(
    store: JobStore, results_dir: Path, poll: float, on_end: Callable[[], None]
) -> asyncio.Task[None]:
    """One worker with the no-op generation service, telling `on_end` of each ended job
    (through the hook webhooks use: learning the end costs the store nothing)."""

    async def notify(job: Job, event: JobEvent) -> None:
        if is_terminal(event):
            on_end()

    generation = httpx.AsyncClient(
        transport=StreamingASGITransport(noop_generation()), base_url="http://noop"
    )
    worker = Worker(
        store=store,
        results=ImageStore(results_dir),
        generation=generation,
        config=WorkerConfig(concurrency=1, heartbeat_s=5, poll_interval_s=poll),
        notify=notify,
    )
    return asyncio.create_task(worker.run())


@contextlib.asynccontextmanager
async def workers_on_this_loop(
    target: StoreTarget, count: int, results_dir: Path, poll: float
) -> AsyncIterator[WaitEnded]:
    stores = [await target.open() for _ in range(count)]
    ended, changed = 0, asyncio.Event()

    def on_end() -> None:
        nonlocal ended
        ended += 1
        changed.set()

    async def wait_ended(jobs: int) -> None:
        while ended < jobs:
            changed.clear()
            await changed.wait()

    running = [start_worker(store, results_dir, poll, on_end) for store in stores]
    try:
        yield wait_ended
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for store in stores:
            await store.close()


def worker_process(
    target: StoreTarget, results_dir: Path, poll: float, ready: Any, ended: Any
) -> None:
    """A worker process's main: counts the jobs it ends in the shared `ended`."""

    def on_end() -> None:
        with ended.get_lock():
            ended.value += 1

    async def serve() -> None:
        store = await target.open()
        task = start_worker(store, results_dir, poll, on_end)
        ready.set()
        await task

    asyncio.run(serve())


@contextlib.asynccontextmanager
async def worker_processes(
    target: StoreTarget, count: int, results_dir: Path, poll: float
) -> AsyncIterator[WaitEnded]:
    context = multiprocessing.get_context("spawn")
    ended = context.Value("i", 0)
    readies = [context.Event() for _ in range(count)]
    processes = [
        context.Process(
            target=worker_process, args=(target, results_dir, poll, ready, ended), daemon=True
        )
        for ready in readies
    ]
    for process in processes:
        process.start()

    async def wait_ended(jobs: int) -> None:
        while ended.value < jobs:  # a read of shared memory: it costs the workers nothing
            await asyncio.sleep(0.001)

    try:
        if not await asyncio.to_thread(lambda: all(ready.wait(60) for ready in readies)):
            raise RuntimeError("a worker process did not start")
        yield wait_ended
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(10)


LAYOUTS = {"processes": worker_processes, "one-loop": workers_on_this_loop}


async def run_case(
    kind: str, layout: str, workers: int, jobs: int, redis_url: str | None, poll: float
) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"easel-bench-{kind}-"))
    target = StoreTarget(kind, workdir / "jobs.db", redis_url, f"bench-{time.monotonic_ns()}")
    store = await target.open()
    manager = JobManager(
        store=store,
        results=ImageStore(workdir / "results"),
        limits=JobLimits(max_queued=jobs + 1, max_attempts=3, timeout_s=60, concurrency=workers),
    )
    try:
        async with LAYOUTS[layout](target, workers, workdir / "results", poll) as wait_ended:
            # Throughput: a burst of jobs, from the first submit to the last end.
            started = time.perf_counter()
            for i in range(jobs):
                await manager.submit({"prompt": "x", "seed": i}, idempotency_key=None)
            await wait_ended(jobs)
            elapsed = time.perf_counter() - started
            pickups = [await pickup_ms(manager, store, i) for i in range(min(jobs, 200))]
        counts = await store.counts()
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    pickups.sort()
    return {
        "jobs_per_s": jobs / elapsed,
        "pickup_p50_ms": statistics.median(pickups),
        "pickup_p99_ms": pickups[min(len(pickups) - 1, int(len(pickups) * 0.99))],
        "not_done": _ended(counts) - counts[JobStatus.DONE],  # must be 0: a no-op cannot fail
    }


async def pickup_ms(manager: JobManager, store: JobStore, seed: int) -> float:
    """One job submitted to idle workers: created -> started, once it has ended."""
    job = await manager.submit({"prompt": "y", "seed": seed}, idempotency_key=None)
    while (current := await store.get(job.id)) is None or current.started_at is None:
        await asyncio.sleep(0.0005)
    while not current.status.is_terminal:
        await asyncio.sleep(0.0005)
        current = await store.get(job.id) or current
    assert current.started_at is not None
    return (current.started_at - current.created_at) * 1000


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
    parser.add_argument("--layouts", nargs="+", default=["processes"], choices=list(LAYOUTS))
    parser.add_argument(
        "--poll",
        type=float,
        default=JobsSettings().worker_poll_interval,
        help="an idle worker's wait between claims (EASEL_WORKER_POLL_INTERVAL)",
    )
    args = parser.parse_args()
    redis_process, redis_url = start_redis() if "redis" in args.stores else (None, None)
    table = Table(title=f"jobs: {args.jobs} no-op jobs per case, idle poll {args.poll * 1000:g} ms")
    columns = ("layout", "store", "workers", "jobs/s", "pickup p50 ms", "pickup p99 ms", "not done")
    for column in columns:
        table.add_column(column, justify="right")
    cases = itertools.product(args.layouts, args.stores, args.workers)
    try:
        for layout, kind, workers in cases:
            figures = asyncio.run(run_case(kind, layout, workers, args.jobs, redis_url, args.poll))
            table.add_row(
                layout,
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
