"""Run `easel` as a user does, and tell whether processes are gone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.servers import base_env

WAIT = 30.0

# A stand-in for ComfyUI: answers GET /system_stats and, like ComfyUI's launchers, has a
# child process of its own, so stopping it means stopping a process tree.
FAKE_COMFYUI = """
import http.server, json, subprocess, sys

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        found = self.path == "/system_stats"
        body = json.dumps({"system": {"comfyui_version": "fake"}} if found else {}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print("fake comfyui listening", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def run_easel(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "easel", *args],
        cwd=cwd,
        env=base_env(cwd, {"COLUMNS": "200", **env}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pid_records(run_dir: Path) -> dict[str, dict[str, object]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(run_dir.glob("*.pid"))}


def is_gone(process: psutil.Process) -> bool:
    """Exited. A zombie counts: it runs nothing, and where PID 1 does not reap orphans
    (some containers) its entry stays."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process], timeout: float = WAIT) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = [process for process in processes if not is_gone(process)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
