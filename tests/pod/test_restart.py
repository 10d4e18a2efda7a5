"""A crashed pod process is restarted: `easel up` leaves a watchdog that owns the pod's
processes, restarts one that exits (with backoff), counts the restarts, shows the last
exit, and gives up on one that keeps failing at start-up, saying why. `easel down` stops the
watchdog first, so nothing is restarted while the pod is being stopped.

Real processes: a small pod (a ComfyUI stand-in that fails every start after its first,
image-utils, one worker) on free ports; the tests run in order on it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.pod.helpers import is_gone, pid_records, run_easel, wait_gone
from tests.support.servers import free_port

WAIT = 90.0  # generous: a restart is a new Python process importing easel, on a busy machine

# A ComfyUI stand-in that serves the first time it starts and fails every start after it,
# as a server whose configuration broke while it ran would.
FLAKY_COMFYUI = """
import http.server, pathlib, sys

marker = pathlib.Path(sys.argv[2])
if marker.exists():
    print("flaky comfyui: broken configuration", flush=True)
    raise SystemExit(3)
marker.write_text("started once")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/system_stats" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

MAX_FAILURES = 3


class SmallPod:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.image_utils_port = free_port()
        comfyui = free_port()
        script = cwd / "flaky_comfyui.py"
        script.write_text(FLAKY_COMFYUI)
        command = [sys.executable, str(script), str(comfyui), str(cwd / "comfyui-started")]
        self.env = {
            "EASEL_RUN_DIR": str(cwd / "run"),
            "EASEL_POD_SERVICES": "image-utils",
            "EASEL_POD_PORTS": json.dumps({"image-utils": self.image_utils_port}),
            "EASEL_POD_WORKERS": "1",
            "EASEL_COMFYUI_COMMAND": shlex.join(command),
            "EASEL_COMFYUI_API_URL": f"http://127.0.0.1:{comfyui}",
            "EASEL_POD_STOP_GRACE": "10",
            "EASEL_POD_RESTART_BACKOFF": "0.2",
            "EASEL_POD_RESTART_MAX_FAILURES": str(MAX_FAILURES),
        }

    @property
    def run_dir(self) -> Path:
        return self.cwd / "run"

    def easel(self, *args: str) -> tuple[int, str]:
        result = run_easel(self.cwd, self.env, *args)
        return result.returncode, result.stdout + result.stderr

    def rows(self) -> dict[str, str]:
        """`easel status` table rows by process name."""
        _, out = self.easel("status")
        return {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}

    def process(self, name: str) -> psutil.Process:
        return psutil.Process(int(str(pid_records(self.run_dir)[name]["pid"])))

    def watchdog(self) -> psutil.Process | None:
        path = self.run_dir / "watchdog.json"
        if not path.exists():
            return None
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(int(json.loads(path.read_text())["pid"]))
        return None


def eventually(what: str, check: Callable[[], str | None]) -> str:
    """Poll `check` until it returns text (what it saw), up to WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        seen = check()
        if seen is not None:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT:g}s: {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallPod]:
    pod = SmallPod(tmp_path_factory.mktemp("restart"))
    try:
        yield pod
    finally:
        left = [p for p in (pod.watchdog(),) if p is not None]
        with contextlib.suppress(Exception):
            left += [pod.process(name) for name in pid_records(pod.run_dir)]
        pod.easel("down")
        for process in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def test_up_leaves_a_watchdog_that_status_shows(pod: SmallPod) -> None:
    code, out = pod.easel("up")
    assert code == 0, out
    watchdog = pod.watchdog()
    assert watchdog is not None and watchdog.is_running()
    # It owns the pod's processes: they are its children.
    assert pod.process("image-utils").ppid() == watchdog.pid
    code, out = pod.easel("status")
    assert code == 0, out
    assert f"watchdog: running (pid {watchdog.pid})" in out
    rows = pod.rows()
    assert set(rows) == {"comfyui", "image-utils", "worker-1"}
    for row in rows.values():
        assert "running" in row and "│ 0 " in row  # no restarts yet


def test_a_service_killed_with_sigkill_is_restarted(pod: SmallPod) -> None:
    victim = pod.process("image-utils")
    victim.kill()
    assert wait_gone([victim]) == []

    def back() -> str | None:
        row = pod.rows().get("image-utils", "")
        return row if "running" in row and "healthy" in row and "│ 1 " in row else None

    row = eventually("image-utils back with 1 restart", back)
    assert "SIGKILL" in row
    assert pod.process("image-utils").pid != victim.pid
    url = f"http://127.0.0.1:{pod.image_utils_port}/api/health"
    assert httpx.get(url, timeout=10).json()["status"] == "healthy"
    log = (pod.run_dir / "watchdog.log").read_text()
    assert "image-utils: exited (SIGKILL)" in log and "image-utils: restarted" in log


def test_a_killed_worker_is_restarted_too(pod: SmallPod) -> None:
    victim = pod.process("worker-1")
    victim.kill()
    assert wait_gone([victim]) == []

    def back() -> str | None:
        row = pod.rows().get("worker-1", "")
        return row if "running" in row and "│ 1 " in row else None

    eventually("worker-1 back with 1 restart", back)


def test_a_process_that_keeps_failing_at_start_up_is_given_up_on(pod: SmallPod) -> None:
    victim = pod.process("comfyui")
    victim.kill()  # every start after this one exits with code 3

    def given_up() -> str | None:
        _, out = pod.easel("status")
        return out if "comfyui: not restarted" in out else None

    out = eventually("comfyui given up on", given_up)
    reason = f"failed at start-up {MAX_FAILURES} times in a row (last: exit code 3)"
    assert reason in out
    row = pod.rows()["comfyui"]
    assert "failed" in row and f"│ {MAX_FAILURES} " in row and "code 3" in row
    log = (pod.run_dir / "watchdog.log").read_text()
    assert f"comfyui: not restarted: {reason}" in log
    assert "flaky comfyui: broken configuration" in (pod.run_dir / "comfyui.log").read_text()
    # The rest of the pod is untouched, and the watchdog still watches it.
    watchdog = pod.watchdog()
    assert watchdog is not None and watchdog.is_running()
    assert "running" in pod.rows()["image-utils"]


def test_down_of_one_process_is_not_undone_by_the_watchdog(pod: SmallPod) -> None:
    code, out = pod.easel("down", "worker-1")
    assert code == 0, out
    eventually(
        "the watchdog letting worker-1 go",
        lambda: (
            "worker-1: stopped by `easel down`"
            if "worker-1: stopped by `easel down`" in (pod.run_dir / "watchdog.log").read_text()
            else None
        ),
    )
    assert "worker-1" not in pid_records(pod.run_dir)
    assert "stopped" in pod.rows()["worker-1"]


def test_down_stops_the_watchdog_first_and_nothing_comes_back(pod: SmallPod) -> None:
    watchdog = pod.watchdog()
    assert watchdog is not None
    processes = [pod.process(name) for name in pid_records(pod.run_dir) if name != "comfyui"]
    victim = pod.process("image-utils")
    victim.kill()  # down while the watchdog is about to restart it
    code, out = pod.easel("down")
    assert code == 0, out
    assert out.splitlines()[0].startswith("watchdog: ended"), out  # before anything else
    assert is_gone(watchdog) and wait_gone(processes, timeout=0) == []
    assert list(pod.run_dir.glob("*.pid")) == [] and pod.watchdog() is None
    port = str(pod.image_utils_port)
    again = [p for p in psutil.process_iter(["cmdline"]) if port in (p.info["cmdline"] or [])]
    assert all(is_gone(p) for p in again), again
