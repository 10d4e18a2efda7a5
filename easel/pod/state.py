"""How each pod process is doing, for `easel status`: process, health, uptime, restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from easel.pod.health import probe
from easel.pod.pidfiles import PidFiles, PidRecord
from easel.pod.plan import PodProcess


class RunState(StrEnum):
    RUNNING = "running"
    DEAD = "dead"  # a PID file, but its process is gone (crashed or killed): stale
    FAILED = "failed"  # gone, and the watchdog gave up restarting it (`gave_up` says why)
    STOPPED = "stopped"  # no PID file

    @property
    def is_up(self) -> bool:
        return self is RunState.RUNNING


@dataclass(frozen=True)
class ProcessState:
    name: str
    state: RunState
    pid: int | None
    port: int | None
    health: str | None  # the health endpoint's status; None: not running or no endpoint
    answered: bool  # running, and its health endpoint (if any) answers 2xx
    uptime_s: float | None
    log: Path
    planned: bool  # in the current plan; False: a PID file left from other settings
    restarts: int = 0
    last_exit_code: int | None = None  # see PidRecord
    last_exit_at: float | None = None
    gave_up: str | None = None


def snapshot(plan: list[PodProcess], files: PidFiles, health_timeout: float) -> list[ProcessState]:
    """The planned processes in start order, then any other process with a PID file."""
    names = [process.name for process in plan]
    extra = [r for r in files.records() if r.name not in names]
    states = [_state(p.name, p.port, files.read(p.name), files, health_timeout) for p in plan]
    states += [_state(r.name, r.port, r, files, health_timeout, planned=False) for r in extra]
    return states


def _state(
    name: str,
    port: int | None,
    record: PidRecord | None,
    files: PidFiles,
    health_timeout: float,
    *,
    planned: bool = True,
) -> ProcessState:
    log = files.log_path(name)
    if record is None:
        state = RunState.DEAD if files.exists(name) else RunState.STOPPED
        return ProcessState(name, state, None, port, None, False, None, log, planned)
    process = record.process()
    if process is None:
        state = RunState.DEAD if record.gave_up is None else RunState.FAILED
        found = ProcessState(name, state, record.pid, record.port, None, False, None, log, planned)
    else:
        health, answered = None, True
        if record.health_url:
            result = probe(record.health_url, health_timeout)
            health, answered = result.status, result.answered
        uptime = time.time() - record.create_time
        found = ProcessState(
            name, RunState.RUNNING, record.pid, record.port, health, answered, uptime, log,
            planned,
        )  # fmt: skip
    return replace(
        found,
        restarts=record.restarts,
        last_exit_code=record.last_exit_code,
        last_exit_at=record.last_exit_at,
        gave_up=record.gave_up,
    )
