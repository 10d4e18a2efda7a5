"""The watchdog: the process `easel up` leaves behind, which owns the pod's processes and
starts again the ones that exit (`restarts.py` says when, and when to stop trying).

It started them, so it waits for them and learns how each ended (code or signal). It
restarts under the run directory's lock, and only a process whose PID file still names the
one that exited: `easel down` holds the lock while it stops a process and removes its file,
so a process being stopped is never started again. A full `easel down` ends the watchdog
first (`stop_watchdog`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import psutil

from easel.pod.health import probe
from easel.pod.pidfiles import WATCHDOG, PidFiles, PidRecord
from easel.pod.plan import PodProcess
from easel.pod.restarts import RestartPolicy, describe_exit
from easel.pod.supervisor import KILL_WAIT, StartFailed, Supervisor

log = logging.getLogger("easel.pod.watchdog")

POLL_INTERVAL = 0.2
HEALTH_TIMEOUT = 1.0  # one look per pass: a slow answer must not hold up the others


@dataclass
class Watched:
    process: PodProcess
    record: PidRecord
    child: subprocess.Popen[bytes] | None  # None: started by an earlier watchdog
    started_at: float  # monotonic
    started_ok: bool  # answered its health endpoint (or outlived the start-up window)
    failures: int = 0  # failures at start-up in a row
    exit_code: int | None = None
    exit_at: float | None = None  # wall time of the last exit
    restart_at: float | None = None  # monotonic; set while it is down
    gave_up: str | None = None  # set once it is not to be started again


class Watchdog:
    def __init__(
        self,
        supervisor: Supervisor,
        policy: RestartPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.supervisor = supervisor
        self.files: PidFiles = supervisor.files
        self.policy = policy
        self.clock = clock
        self.wall_clock = wall_clock
        self.poll_interval = poll_interval
        self.watched: dict[str, Watched] = {}

    def watch(self, process: PodProcess, record: PidRecord) -> None:
        """Watch a running process; one that `up` waited for has started well."""
        self.watched[process.name] = Watched(
            process,
            record,
            self.supervisor.child(process.name),
            started_at=self.clock(),
            started_ok=True,
        )

    def run(self, stopping: threading.Event) -> None:
        """Until told to stop, or nothing is left to watch."""
        while self.watched and not stopping.is_set():
            self.check()
            stopping.wait(self.poll_interval)

    def check(self) -> None:
        """One pass over every watched process."""
        for watched in list(self.watched.values()):
            if watched.restart_at is None:
                self._look(watched)
            elif self.clock() >= watched.restart_at:
                self._act(watched)

    def _look(self, watched: Watched) -> None:
        if watched.child is not None:
            code = watched.child.poll()  # reaps it
            if code is None:
                self._note_start(watched)
                return
        elif watched.record.alive:
            self._note_start(watched)
            return
        else:
            code = None
        watched.exit_code, watched.exit_at = code, self.wall_clock()
        how = describe_exit(code)
        name = watched.process.name
        if watched.started_ok:
            watched.failures = 0
            log.warning("%s: exited (%s)", name, how)
        else:
            watched.failures += 1
            log.warning("%s: exited (%s) at start-up, %d time(s) in a row", name, how,
                        watched.failures)  # fmt: skip
        if self.policy.gives_up(watched.failures):
            watched.gave_up = f"failed at start-up {watched.failures} times in a row (last: {how})"
            watched.restart_at = self.clock()
            return
        delay = self.policy.delay(watched.failures)
        watched.restart_at = self.clock() + delay
        log.info("%s: restarting in %gs", name, delay)

    def _note_start(self, watched: Watched) -> None:
        """A running process that has not yet started well: has it now?"""
        if watched.started_ok:
            return
        process = watched.process
        if process.health_url is None:
            ran = self.clock() - watched.started_at
            watched.started_ok = ran >= self.policy.startup_window_s
        else:
            watched.started_ok = probe(process.health_url, HEALTH_TIMEOUT).answered
        if watched.started_ok:
            watched.failures = 0

    def _act(self, watched: Watched) -> None:
        """Start it again, or record that it will not be, under the run directory's lock;
        unless its PID file names another process now, or none (`down` stopped it)."""
        name = watched.process.name
        with self.files.lock() as held:
            if not held:
                return  # an `up` or `down` is at work: look again next pass
            current = self.files.read(name)
            if current is None or current.pid != watched.record.pid:
                why = (
                    "stopped by `easel down`"
                    if current is None
                    else f"started again by `easel up` (pid {current.pid})"
                )
                log.info("%s: %s; not restarted", name, why)
                del self.watched[name]
                return
            if watched.gave_up is not None:
                self._give_up(watched, current)
            else:
                self._restart(watched, current)

    def _give_up(self, watched: Watched, current: PidRecord) -> None:
        reason = watched.gave_up
        self.files.write(
            replace(
                current,
                last_exit_code=watched.exit_code,
                last_exit_at=watched.exit_at,
                gave_up=reason,
            )
        )
        log.error("%s: not restarted: %s; see its log, then `easel up`", current.name, reason)
        del self.watched[current.name]

    def _restart(self, watched: Watched, current: PidRecord) -> None:
        # Children left in its process group would hold its port or GPU memory.
        self.supervisor.stop(current)
        try:
            record = self.supervisor.spawn(
                watched.process,
                current.order,
                restarts=current.restarts + 1,
                last_exit_code=watched.exit_code,
                last_exit_at=watched.exit_at,
            )
        except StartFailed as exc:
            # Nothing runs: count it as a failure at start-up of a process that exited.
            log.warning("%s: %s", current.name, exc.reason)
            watched.started_ok, watched.child = False, None
            watched.restart_at = None
            return
        watched.record, watched.child = record, self.supervisor.child(record.name)
        watched.started_at, watched.started_ok = self.clock(), False
        watched.restart_at = None
        log.info("%s: restarted (pid %d), restart %d", record.name, record.pid, record.restarts)


def own_record() -> PidRecord:
    me = psutil.Process()
    return PidRecord(name=WATCHDOG, pid=me.pid, create_time=me.create_time(), order=-1)


def stop_watchdog(files: PidFiles, grace: float) -> PidRecord | None:
    """End the watchdog of an earlier `up` (its processes live on); the record of the one
    that was running, or None. Only the watchdog itself: not its children."""
    record = files.read_watchdog()
    process = record.process() if record is not None else None
    if record is not None and process is not None and process.pid != os.getpid():
        for send, wait in ((psutil.Process.terminate, grace), (psutil.Process.kill, KILL_WAIT)):
            with contextlib.suppress(psutil.Error):
                send(process)
            if _gone(record, wait):
                break
    files.remove_watchdog()
    return record if process is not None else None


def _gone(record: PidRecord, timeout: float) -> bool:
    # Not psutil's wait: where PID 1 does not reap orphans, a dead watchdog stays a zombie.
    deadline = time.monotonic() + timeout
    while record.alive:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL / 4)
    return True
