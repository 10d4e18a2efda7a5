"""Start real easel servers as processes on free ports, and stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    target: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def base_env(tmp: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EASEL_")}
    for legacy in (
        "GENERATION_SERVICE_URL",
        "GPU_SERVICE_URL",
        "SEGMENTATION_SERVICE_URL",
        "IMAGE_UTILS_SERVICE_URL",
        "JOB_MANAGER_SERVICE_URL",
        "REQUEST_TIMEOUT",
    ):
        env.pop(legacy, None)
    env["EASEL_DATA_DIR"] = str(tmp / "data")
    env["EASEL_LOG_LEVEL"] = "WARNING"
    env["HF_HUB_OFFLINE"] = "1"
    # A hub cache of the test's own: models a developer has cached (SAM 2, say) would
    # change what `auto` picks.
    env["HF_HUB_CACHE"] = str(tmp / "hf-cache")
    # Generation runs the built-in tiny model, loaded on first use: stacks that never
    # generate never import torch.
    env["EASEL_GENERATION_MODEL"] = "tiny-random"
    env["EASEL_GENERATION_LOAD"] = "lazy"
    env.update(extra or {})
    return env


def start_server(
    target: str, tmp: Path, env: Mapping[str, str] | None = None, port: int | None = None
) -> ServerProcess:
    """`python -m easel serve TARGET` on a free port; returns once /api/health answers."""
    port = port or free_port()
    log_path = tmp / f"{target}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "easel", "serve", target, "--port", str(port)],
            cwd=tmp,
            env=base_env(tmp, env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(target, port, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{target} exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"{target} did not become healthy in {START_TIMEOUT}s:\n{server.log()}")


def start_worker(tmp: Path, env: Mapping[str, str] | None = None) -> ServerProcess:
    """`python -m easel worker` (no HTTP: `port` is 0); returns once it runs."""
    log_path = tmp / f"worker-{len(list(tmp.glob('worker-*.log')))}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "easel", "worker"],
            cwd=tmp,
            env=base_env(tmp, {"EASEL_LOG_LEVEL": "INFO", **(env or {})}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = ServerProcess("worker", 0, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while "started" not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"worker did not start:\n{worker.log()}")
        time.sleep(0.05)
    return worker


@dataclass
class Stack:
    """A running topology: the gateway and, in split mode, each service's own process."""

    topology: str
    gateway: ServerProcess
    services: dict[str, ServerProcess] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.gateway.url

    def stop(self) -> None:
        for server in (self.gateway, *self.services.values()):
            server.stop()


# name in settings -> (cli target, env var naming its URL at the gateway)
SPLIT_SERVICES = {
    "generation": ("generation", "EASEL_GENERATION_URL"),
    "segmentation": ("segmentation", "EASEL_SEGMENTATION_URL"),
    "image_utils": ("image-utils", "EASEL_IMAGE_UTILS_URL"),
    "job_manager": ("jobs", "EASEL_JOB_MANAGER_URL"),
}


def start_stack(topology: str, tmp: Path, env: Mapping[str, str] | None = None) -> Stack:
    if topology == "all-in-one":
        return Stack(topology, start_server("all", tmp, env))
    # In order, each told the URLs of those before it (the job manager's worker calls
    # generation by URL); the gateway is told them all.
    services: dict[str, ServerProcess] = {}
    urls = dict(env or {})
    for name, (target, url_var) in SPLIT_SERVICES.items():
        services[name] = start_server(target, tmp, urls)
        urls[url_var] = services[name].url
    return Stack(topology, start_server("gateway", tmp, urls), services)


@contextmanager
def running_stack(
    topology: str, tmp: Path, env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    stack = start_stack(topology, tmp, env)
    try:
        yield stack
    finally:
        stack.stop()
