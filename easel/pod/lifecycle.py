"""`easel up` and `easel down` over a plan: in order, refusing doubles, cleaning up after
failures.

`up` never starts a second copy: a process whose PID file names a live process of ours is
left running ("already running"), a PID file whose process is gone is removed and the
process started again. When a start fails (it exits, its port is taken, or it does not
answer within the start timeout) `up` stops what it started in this run, in reverse, and
leaves alone what was already running: a half-started pod is not left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from easel.pod.health import port_in_use
from easel.pod.pidfiles import PidRecord
from easel.pod.plan import PodProcess
from easel.pod.supervisor import StartFailed, Supervisor


class Level(StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


Report = Callable[[Level, str, str], None]  # (level, process name, message)


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    failure: StartFailed | None = None  # None: everything planned is up


def up(plan: list[PodProcess], supervisor: Supervisor, report: Report) -> UpResult:
    result = UpResult()
    started: list[PidRecord] = []
    try:
        for order, process in enumerate(plan):
            if _already_running(process, supervisor, report):
                result.already_running.append(process.name)
                continue
            if (
                process.port is not None
                and process.host
                and port_in_use(process.host, process.port)
            ):
                raise StartFailed(process.name, f"port {process.port} is in use by another process")
            began = time.monotonic()
            record = supervisor.spawn(process, order)
            started.append(record)
            supervisor.wait_ready(process)
            where = f", port {process.port}" if process.port else ""
            took = time.monotonic() - began
            report(Level.OK, process.name, f"started (pid {record.pid}{where}) in {took:.1f}s")
            result.started.append(process.name)
        # A process without a health endpoint (a worker) counts as started once alive;
        # by now it has had the later starts' time to fail.
        for record in started:
            if not record.alive:
                code = supervisor.exit_code(record.name)
                raise StartFailed(record.name, f"exited soon after starting (code {code})")
    except StartFailed as failure:
        result.failure = failure
        report(Level.FAIL, failure.name, failure.reason)
        _stop_all(started, supervisor, report)
    except KeyboardInterrupt:
        _stop_all(started, supervisor, report)
        raise
    return result


def _already_running(process: PodProcess, supervisor: Supervisor, report: Report) -> bool:
    files = supervisor.files
    record = files.read(process.name)
    if record is not None and record.alive:
        report(Level.WARN, process.name, f"already running (pid {record.pid}); not started again")
        return True
    if files.exists(process.name):
        # Its process is gone, but children it left in its group would still hold ports or
        # GPU memory: stop them before starting it again.
        left = record is not None and supervisor.stop(record) != "not running"
        files.remove(process.name)
        message = "removed a stale PID file (its process is gone)"
        report(Level.INFO, process.name, message + ("; stopped its orphans" if left else ""))
    return False


def _stop_all(records: list[PidRecord], supervisor: Supervisor, report: Report) -> None:
    for record in reversed(records):
        outcome = supervisor.stop(record)
        supervisor.files.remove(record.name)
        done = "had exited" if outcome == "not running" else outcome
        report(Level.INFO, record.name, f"{done} (started by this run)")


def down(supervisor: Supervisor, report: Report, names: set[str] | None = None) -> int:
    """Stop every process with a PID file (or those in `names`), last started first; remove
    their PID files. Returns how many were running."""
    files = supervisor.files
    for name in files.names():
        if files.read(name) is None and (names is None or name in names):
            files.remove(name)
            report(Level.INFO, name, "removed an unreadable PID file")
    records = [r for r in files.records() if names is None or r.name in names]
    running = 0
    for record in reversed(records):
        outcome = supervisor.stop(record)
        files.remove(record.name)
        running += outcome != "not running"
        level = Level.WARN if outcome == "killed" else Level.OK
        report(level, record.name, f"{outcome} (pid {record.pid})")
    return running
