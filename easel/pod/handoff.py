"""`easel up` in two processes: the command a person runs, and the watchdog it starts. The
watchdog starts the pod's processes (so they are its children, and it learns how each one
exits), tells the command how that went, then stays to restart what crashes.

The watchdog writes one JSON object a line to its stdout, a pipe to the command: `report`
lines while it starts the pod, then one `outcome`; from then on its stdout goes to its log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from easel.pod import lifecycle
from easel.pod.lifecycle import Level, Report
from easel.pod.pidfiles import WATCHDOG, PidFiles
from easel.pod.plan import PodProcess
from easel.pod.restarts import RestartPolicy
from easel.pod.settings import PodSettings
from easel.pod.supervisor import Supervisor
from easel.pod.watchdog import Watchdog, own_record, stop_watchdog

WATCHDOG_COMMAND = "pod-watchdog"  # the hidden `easel` command the watchdog runs
HANDOFF_WAIT = 10.0  # seconds for an interrupted watchdog to stop what it started


@dataclass
class Outcome:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    failure: tuple[str, str] | None = None  # (process, reason)
    locked: bool = False  # another `up` or `down` holds the run directory
    lost: bool = False  # the watchdog ended without an outcome (its log says why)


# ---- the command's side ---------------------------------------------------------------
def start_pod(files: PidFiles, report: Report, *, python: str = sys.executable) -> Outcome:
    """Start the watchdog, relay its reports, and return its outcome."""
    files.run_dir.mkdir(parents=True, exist_ok=True)
    with files.log_path(WATCHDOG).open("ab") as log:
        watchdog = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [python, "-m", "easel", WATCHDOG_COMMAND],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,  # it outlives this command, and Ctrl-C here
        )
    assert watchdog.stdout is not None
    try:
        for line in watchdog.stdout:
            try:
                message = json.loads(line)
            except ValueError:  # not ours (a library printing): the log has it anyway
                continue
            if not isinstance(message, dict):
                continue
            if "report" in message:
                level, name, text = message["report"]
                report(Level(level), name, text)
            elif "outcome" in message:
                data = message["outcome"]
                failure = data.pop("failure")
                return Outcome(**data, failure=tuple(failure) if failure else None)
    except KeyboardInterrupt:
        watchdog.terminate()  # it stops what it started, as `up` does on Ctrl-C
        with contextlib.suppress(subprocess.TimeoutExpired):
            watchdog.wait(HANDOFF_WAIT)
        raise
    finally:
        watchdog.stdout.close()
    watchdog.wait()
    return Outcome(lost=True)


# ---- the watchdog's side --------------------------------------------------------------
class _Pipe:
    """The reports to the command; a command that is gone (Ctrl-C) no longer reads them."""

    def __init__(self) -> None:
        self.out: IO[str] | None = os.fdopen(os.dup(sys.stdout.fileno()), "w")

    def send(self, **message: Any) -> None:
        if self.out is None:
            return
        try:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()
        except (BrokenPipeError, OSError):
            self.out = None

    def report(self, level: Level, name: str, text: str) -> None:
        self.send(report=[str(level), name, text])

    def close(self) -> None:
        """From now on stdout goes where stderr goes: the watchdog's log."""
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        if self.out is not None:
            with contextlib.suppress(OSError):
                self.out.close()
            self.out = None


def run_watchdog(plan: list[PodProcess], supervisor: Supervisor, pod: PodSettings) -> int:
    """Start the pod, tell the command, then watch it (EASEL_POD_RESTART) until `down`."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    pipe = _Pipe()
    # Until the pod is up, SIGTERM (the command's Ctrl-C) is Ctrl-C: `up` stops what it
    # started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    files = supervisor.files
    try:
        with files.lock() as held:
            if not held:
                pipe.send(outcome=asdict(Outcome(locked=True)))
                return 1
            earlier = stop_watchdog(files, pod.pod_stop_grace)
            if earlier is not None:  # it must not restart what this `up` starts
                pipe.report(Level.INFO, WATCHDOG, f"replaced the one of an earlier `easel up` "
                            f"(pid {earlier.pid})")  # fmt: skip
            result = lifecycle.up(plan, supervisor, pipe.report)
            watching = pod.pod_restart and result.failure is None
            if watching:
                files.write_watchdog(own_record())
    except KeyboardInterrupt:
        return 130
    stopping = threading.Event()  # from here on, SIGTERM (`easel down`) ends the watching
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    failure = result.failure
    pipe.send(
        outcome=asdict(
            Outcome(
                started=result.started,
                already_running=result.already_running,
                failure=(failure.name, failure.reason) if failure else None,
            )
        )
    )
    pipe.close()
    if not watching:
        return 1 if failure else 0
    return _watch(plan, supervisor, pod, stopping)


def _watch(
    plan: list[PodProcess], supervisor: Supervisor, pod: PodSettings, stopping: threading.Event
) -> int:
    watchdog = Watchdog(supervisor, RestartPolicy.from_settings(pod))
    files = supervisor.files
    for process in plan:
        record = files.read(process.name)
        if record is not None and record.alive:
            watchdog.watch(process, record)
    logging.getLogger("easel.pod.watchdog").info(
        "watching %s (pid %d)", ", ".join(watchdog.watched), os.getpid()
    )
    watchdog.run(stopping)
    mine = files.read_watchdog()
    if mine is not None and mine.pid == os.getpid():
        files.remove_watchdog()
    return 0
