"""Starting, waiting for and stopping one process (and its children)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from easel.pod.pidfiles import PidFiles
from easel.pod.plan import PodProcess
from easel.pod.supervisor import StartFailed, Supervisor
from tests.pod.helpers import wait_gone
from tests.support.servers import free_port

# A parent that starts a child, then waits: a process tree like ComfyUI's.
TREE = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print("tree", "ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture()
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(
        PidFiles(tmp_path / "run"), start_timeout=30, stop_grace=5, health_timeout=1
    )
    yield supervisor
    for record in supervisor.files.records():  # whatever a failed test left running
        supervisor.stop(record)


def tree(supervisor: Supervisor) -> tuple[psutil.Process, psutil.Process]:
    record = supervisor.spawn(PodProcess("tree", (sys.executable, "-c", TREE)), order=0)
    leader = psutil.Process(record.pid)
    while "tree ready" not in supervisor.files.log_path("tree").read_text():
        assert leader.is_running()
    (child,) = leader.children()
    return leader, child


def test_spawn_writes_a_pid_file_and_appends_to_the_log(sup: Supervisor) -> None:
    leader, child = tree(sup)
    record = sup.files.read("tree")
    assert record is not None and record.pid == leader.pid and record.alive
    assert record.create_time == leader.create_time()
    assert leader.ppid() == psutil.Process().pid
    assert sup.stop(record) == "stopped"
    assert wait_gone([leader, child]) == []
    log = sup.files.log_path("tree").read_text()
    assert log.startswith("--- easel up ") and "tree ready" in log


def test_stop_finds_the_children_of_a_killed_leader(sup: Supervisor) -> None:
    leader, child = tree(sup)
    record = sup.files.read("tree")
    assert record is not None
    leader.kill()
    assert wait_gone([leader]) == []
    assert not record.alive and child.is_running()  # the orphan lives on in its group
    assert sup.stop(record) == "stopped"
    assert wait_gone([child]) == []
    assert sup.stop(record) == "not running"


def test_a_process_that_exits_fails_its_start(sup: Supervisor) -> None:
    port = free_port()
    process = PodProcess(
        "broken",
        (sys.executable, "-c", "raise SystemExit(3)"),
        port=port,
        health_url=f"http://127.0.0.1:{port}/api/health",
    )
    sup.spawn(process, order=0)
    with pytest.raises(StartFailed, match="exited with code 3"):
        sup.wait_ready(process)


def test_a_missing_program_fails_its_start(sup: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(StartFailed, match="cannot run"):
        sup.spawn(PodProcess("x", (str(tmp_path / "no-such-program"),)), 0)
