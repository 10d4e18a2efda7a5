"""PID files: what they record, and when a PID is ours."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from easel.pod.pidfiles import PidFiles, PidRecord


def own_record(name: str = "gateway", order: int = 0) -> PidRecord:
    me = psutil.Process()
    return PidRecord(name=name, pid=me.pid, create_time=me.create_time(), order=order)


def test_a_record_round_trips_and_records_come_in_start_order(tmp_path: Path) -> None:
    files = PidFiles(tmp_path / "run")
    assert files.records() == [] and files.names() == []
    second = PidRecord("gateway", 2, 2.0, order=5, port=8000, health_url="http://x/api/health")
    first = PidRecord("generation", 1, 1.0, order=1, port=8001)
    files.write(second)
    files.write(first)
    assert files.read("gateway") == second
    assert files.records() == [first, second]
    assert (tmp_path / "run" / "gateway.pid").exists()
    assert files.log_path("gateway") == tmp_path / "run" / "gateway.log"
    files.remove("gateway")
    files.remove("gateway")  # idempotent
    assert files.names() == ["generation"]


def test_an_unreadable_file_is_no_record(tmp_path: Path) -> None:
    files = PidFiles(tmp_path)
    files.pid_path("jobs").write_text("12345\n")
    assert files.read("jobs") is None
    assert files.exists("jobs") and files.names() == ["jobs"]
    assert files.records() == []


def test_a_live_process_of_ours_is_alive() -> None:
    assert own_record().alive


def test_a_reused_pid_is_not_ours() -> None:
    record = own_record()
    reused = PidRecord(record.name, record.pid, record.create_time - 10, record.order)
    assert not reused.alive


def test_an_exited_process_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = PidRecord("worker-1", child.pid, psutil.Process(child.pid).create_time(), 0)
    child.wait(30)
    assert not record.alive


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    process = psutil.Process(child.pid)
    record = PidRecord("worker-1", child.pid, process.create_time(), 0)
    try:
        # Not reaped yet: the process has exited but its entry stays until we wait().
        while process.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        assert not record.alive
    finally:
        child.wait(30)
