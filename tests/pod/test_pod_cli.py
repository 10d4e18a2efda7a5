"""`easel up | status | logs | down` as a user runs them: real processes, a temp run dir.

One pod for the module (ComfyUI stand-in, every registered service, one worker, the
gateway); the tests run in order on it and the last one takes it down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from easel.compose.services import SERVICES
from easel.pod.plan import dependency_order
from tests.pod.helpers import FAKE_COMFYUI, is_gone, pid_records, run_easel, wait_gone
from tests.support.images import b64, noise_image
from tests.support.servers import free_port


@dataclass
class Pod:
    cwd: Path
    env: dict[str, str]
    gateway_port: int

    @property
    def run_dir(self) -> Path:
        return self.cwd / "run"

    def easel(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_easel(self.cwd, self.env, *args)

    def processes(self) -> dict[str, psutil.Process]:
        """The recorded processes that exist (running, or zombies)."""
        found = {}
        for name, record in pid_records(self.run_dir).items():
            with contextlib.suppress(psutil.NoSuchProcess):
                found[name] = psutil.Process(int(str(record["pid"])))
        return found


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def pod_env(cwd: Path) -> tuple[dict[str, str], int]:
    gateway, comfyui, *service_ports = free_ports(2 + len(SERVICES))
    script = cwd / "fake_comfyui.py"
    script.write_text(FAKE_COMFYUI)
    env = {
        "EASEL_RUN_DIR": str(cwd / "run"),
        "EASEL_PORT": str(gateway),
        "EASEL_POD_PORTS": json.dumps(
            {spec.cli_name: port for spec, port in zip(SERVICES, service_ports, strict=True)}
        ),
        "EASEL_POD_WORKERS": "1",
        "EASEL_COMFYUI_COMMAND": shlex.join([sys.executable, str(script), str(comfyui)]),
        "EASEL_COMFYUI_API_URL": f"http://127.0.0.1:{comfyui}",
        "EASEL_POD_STOP_GRACE": "10",
    }
    return env, gateway


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    cwd = tmp_path_factory.mktemp("pod")
    env, gateway = pod_env(cwd)
    pod = Pod(cwd, env, gateway)
    try:
        yield pod
    finally:
        # Whatever a failed test left: `easel down`, then anything still recorded.
        left = list(pod.processes().values())
        pod.easel("down")
        for process in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


# Start order: ComfyUI, the services each after what it needs, the worker, the gateway.
EXPECTED = [
    "comfyui",
    *(spec.cli_name for spec in dependency_order(list(SERVICES))),
    "worker-1",
    "gateway",
]


def test_up_starts_every_process_in_order_and_all_are_healthy(pod: Pod) -> None:
    result = pod.easel("up")
    assert result.returncode == 0, result.stdout + result.stderr
    started = [line.split(":")[0] for line in result.stdout.splitlines() if "started (pid" in line]
    assert started == EXPECTED
    assert set(pid_records(pod.run_dir)) == set(EXPECTED)
    for name in EXPECTED:
        assert (pod.run_dir / f"{name}.log").exists()
    # The gateway calls every service in its own process, by URL.
    body = httpx.get(f"http://127.0.0.1:{pod.gateway_port}/api/system/health", timeout=30).json()
    assert body["status"] == "healthy", body
    for spec in SERVICES:
        assert body["services"][spec.name]["location"].startswith("http://127.0.0.1:"), body


def test_pid_files_name_live_processes_and_their_ports(pod: Pod) -> None:
    records = pid_records(pod.run_dir)
    ports = json.loads(pod.env["EASEL_POD_PORTS"])
    for spec in SERVICES:
        assert records[spec.cli_name]["port"] == ports[spec.cli_name]
    assert records["gateway"]["port"] == pod.gateway_port
    for name, process in pod.processes().items():
        assert process.is_running() and process.create_time() == records[name]["create_time"]


def test_status_shows_every_process_healthy(pod: Pod) -> None:
    result = pod.easel("status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == set(EXPECTED)
    for name in EXPECTED:
        assert "running" in rows[name]
        assert ("-" if name == "worker-1" else "healthy") in rows[name]


def test_a_second_up_starts_nothing_twice(pod: Pod) -> None:
    before = pid_records(pod.run_dir)
    first_watchdog = json.loads((pod.run_dir / "watchdog.json").read_text())["pid"]
    result = pod.easel("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("already running (pid") == len(EXPECTED)
    assert "everything was already running" in result.stdout
    assert pid_records(pod.run_dir) == before
    # One watchdog at a time: the new one took over from the first.
    assert f"replaced the one of an earlier `easel up` (pid {first_watchdog})" in result.stdout
    with contextlib.suppress(psutil.NoSuchProcess):  # gone already, or soon
        assert wait_gone([psutil.Process(first_watchdog)]) == []


def test_logs_print_a_service_log(pod: Pod) -> None:
    result = pod.easel("logs", "comfyui", "-n", "5")
    assert result.returncode == 0, result.stderr
    assert "fake comfyui listening" in result.stdout
    every = pod.easel("logs", "-n", "1")
    assert every.returncode == 0 and all(f"==> {name} <==" in every.stdout for name in EXPECTED)
    unknown = pod.easel("logs", "nope")
    assert unknown.returncode == 2 and "no log for 'nope'" in unknown.stderr


def test_a_killed_service_is_restarted_by_the_watchdog_and_only_it(pod: Pod) -> None:
    before = pid_records(pod.run_dir)
    victim = pod.processes()["image-utils"]
    victim.kill()
    assert wait_gone([victim]) == []

    deadline = time.monotonic() + 90  # a new process importing easel, on a busy machine
    while True:
        status = pod.easel("status")
        row = next(line for line in status.stdout.splitlines() if "image-utils" in line)
        if status.returncode == 0 and "│ 1 " in row:
            break
        assert time.monotonic() < deadline, status.stdout
        time.sleep(0.2)
    assert "running" in row and "healthy" in row
    after = pid_records(pod.run_dir)
    assert after["image-utils"]["pid"] != before["image-utils"]["pid"]
    assert after["image-utils"]["restarts"] == 1
    assert {k: v for k, v in after.items() if k != "image-utils"} == {
        k: v for k, v in before.items() if k != "image-utils"
    }


def test_the_pod_is_closed_by_one_token_that_outlives_restarts(pod: Pod) -> None:
    # Runs after the watchdog restarted image-utils: the new process holds the same token.
    token_file = pod.run_dir / "internal-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    ports = json.loads(pod.env["EASEL_POD_PORTS"])
    resize = {"image": b64(noise_image(32, 32)), "width": 16}
    direct = httpx.post(
        f"http://127.0.0.1:{ports['image-utils']}/api/image-utils/resize", json=resize, timeout=30
    )
    assert direct.status_code == 401, direct.text
    assert direct.json()["error"]["code"] == "internal_unauthorized"
    through = httpx.post(
        f"http://127.0.0.1:{pod.gateway_port}/api/image-utils/resize", json=resize, timeout=30
    )
    assert through.status_code == 200, through.text
    status = pod.easel("status")
    assert f"internal token: generated for this pod, in {token_file}" in status.stdout


def test_down_leaves_no_process_behind(pod: Pod) -> None:
    guard = json.loads((pod.run_dir / "watchdog.json").read_text())
    processes = [*pod.processes().values(), psutil.Process(guard["pid"])]
    children = [child for process in processes for child in process.children(recursive=True)]
    assert children  # the ComfyUI stand-in's child at least
    result = pod.easel("down")
    assert result.returncode == 0, result.stdout + result.stderr
    stopped = [line.split(":")[0] for line in result.stdout.splitlines() if "stopped" in line]
    assert stopped == list(reversed(EXPECTED))  # last started, first stopped
    assert wait_gone(processes + children, timeout=0) == []
    assert list(pod.run_dir.glob("*.pid")) == []
    assert not (pod.run_dir / "watchdog.json").exists()

    status = pod.easel("status")
    assert status.returncode == 1 and status.stdout.count("stopped") == len(EXPECTED)
    again = pod.easel("down")
    assert again.returncode == 0 and "nothing was running" in again.stdout


def test_a_port_taken_by_another_process_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "EASEL_POD_SERVICES": "image-utils",
            "EASEL_POD_PORTS": json.dumps({"image-utils": port}),
        }
        result = run_easel(tmp_path, env, "up")
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stdout
    assert list((tmp_path / "run").glob("*.pid")) == []


def test_a_start_that_never_answers_shows_its_log_and_is_stopped(tmp_path: Path) -> None:
    marker = f"comfyui-stand-in-{free_port()}"
    env = {
        "EASEL_POD_SERVICES": "image-utils",
        "EASEL_POD_PORTS": json.dumps({"image-utils": free_port()}),
        "EASEL_COMFYUI_COMMAND": shlex.join(
            [
                sys.executable,
                "-c",
                f"print({marker!r}, 'booting', flush=True); import time; time.sleep(600)",
            ]
        ),
        "EASEL_COMFYUI_API_URL": f"http://127.0.0.1:{free_port()}",
        "EASEL_POD_START_TIMEOUT": "1",
    }
    result = run_easel(tmp_path, env, "up")
    assert result.returncode == 1
    assert "comfyui: no answer from" in result.stdout
    assert f"{marker} booting" in result.stderr  # the log's last lines
    assert "image-utils" not in result.stdout  # nothing after a failure starts
    assert list((tmp_path / "run").glob("*.pid")) == []
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
    ]
    assert all(is_gone(p) for p in leftovers)


def test_up_waits_for_no_other_up_or_down(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with (tmp_path / "run" / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_easel(tmp_path, {"EASEL_POD_SERVICES": "image-utils"}, "up")
    assert result.returncode == 1
    assert "another `easel up` or `easel down` is running" in result.stderr
    assert list((tmp_path / "run").glob("*.pid")) == []
