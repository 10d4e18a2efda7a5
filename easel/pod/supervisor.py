"""Start one pod process, wait until it answers, stop it and everything it started.

Each process starts in a session of its own (`start_new_session`): `easel up` returns and
the process lives on, and its process group (id = its PID) still names its children after
it dies, so `down` stops those too.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from datetime import datetime

import psutil

from easel.core.settings import child_environment
from easel.pod.health import probe
from easel.pod.pidfiles import CREATE_TIME_TOLERANCE, PidFiles, PidRecord
from easel.pod.plan import PodProcess

KILL_WAIT = 5.0  # seconds for the kernel to finish off SIGKILLed processes


class StartFailed(Exception):
    """A process exited, or did not answer its health endpoint in time."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class Supervisor:
    def __init__(
        self,
        files: PidFiles,
        *,
        start_timeout: float,
        stop_grace: float,
        health_timeout: float,
        poll_interval: float = 0.1,
    ) -> None:
        self.files = files
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.health_timeout = health_timeout
        self.poll_interval = poll_interval
        # Processes this invocation started: polling them reaps them when they exit.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(
        self,
        process: PodProcess,
        order: int,
        *,
        restarts: int = 0,
        last_exit_code: int | None = None,
        last_exit_at: float | None = None,
    ) -> PidRecord:
        """Start it detached, output appended to its log; its PID file written at once, so
        even an `up` that dies half-way leaves nothing untracked. A restart passes its count
        and `last_exit_code`/`last_exit_at`, kept in the record."""
        log_path = self.files.log_path(process.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            stamp = datetime.now().astimezone().isoformat(timespec="seconds")
            log.write(f"--- easel up {stamp}: {shlex.join(process.argv)}\n".encode())
            log.flush()
            try:
                child = subprocess.Popen(  # noqa: S603 (argv from settings, no shell)
                    process.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_environment(process.env),
                    start_new_session=True,
                )
            except OSError as exc:
                raise StartFailed(process.name, f"cannot run {process.argv[0]}: {exc}") from exc
        self._children[process.name] = child
        record = PidRecord(
            name=process.name,
            pid=child.pid,
            create_time=psutil.Process(child.pid).create_time(),
            order=order,
            port=process.port,
            health_url=process.health_url,
            restarts=restarts,
            last_exit_code=last_exit_code,
            last_exit_at=last_exit_at,
        )
        self.files.write(record)
        return record

    def child(self, name: str) -> subprocess.Popen[bytes] | None:
        """The process of `name` this supervisor started (and so can wait for), if any."""
        return self._children.get(name)

    def exit_code(self, name: str) -> int | None:
        child = self._children.get(name)
        return None if child is None else child.poll()

    def wait_ready(self, process: PodProcess) -> None:
        """Until its health endpoint answers 2xx; a process without one is ready alive."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self.exit_code(process.name)
            if code is not None:
                raise StartFailed(process.name, f"exited with code {code}")
            if process.health_url is None:
                return
            if probe(process.health_url, min(self.health_timeout, 1.0)).answered:
                return
            if time.monotonic() > deadline:
                raise StartFailed(
                    process.name,
                    f"no answer from {process.health_url} within {self.start_timeout:g}s",
                )
            time.sleep(self.poll_interval)

    def stop(self, record: PidRecord) -> str:
        """SIGTERM to it and its family, SIGKILL to what is left after the grace period.
        Returns "stopped", "killed" or "not running"."""
        members = family(record)
        if not members:
            return "not running"
        for member in members:
            _signal(member, psutil.Process.terminate)
        left = self._wait_gone(members, self.stop_grace)
        if not left:
            return "stopped"
        for member in left:
            _signal(member, psutil.Process.kill)
        self._wait_gone(left, KILL_WAIT)
        return "killed"

    def _wait_gone(self, members: list[psutil.Process], timeout: float) -> list[psutil.Process]:
        deadline = time.monotonic() + timeout
        while True:
            for child in self._children.values():
                child.poll()  # reap ours, so they do not linger as zombies
            left = [member for member in members if _running(member)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(self.poll_interval)


def family(record: PidRecord) -> list[psutil.Process]:
    """The recorded process, its descendants, and what is left of its process group (children
    orphaned when it was killed). Nothing of a PID reused by another process."""
    leader = record.process()
    members: dict[int, psutil.Process] = {}
    if leader is not None:
        members[leader.pid] = leader
        for child in _children_of(leader):
            members[child.pid] = child
    elif _reused(record):
        # The kernel keeps a PID out of reuse while its process group has members, so a
        # reused PID means our group is empty; the group of that number is someone else's.
        return []
    for process in psutil.process_iter():
        if process.pid in members or process.pid == os.getpid():
            continue
        try:
            if (
                os.getpgid(process.pid) == record.pid
                and process.create_time() >= record.create_time - CREATE_TIME_TOLERANCE
                and _running(process)
            ):
                members[process.pid] = process
        except (OSError, psutil.Error):
            continue
    return list(members.values())


def _children_of(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _reused(record: PidRecord) -> bool:
    try:
        created = psutil.Process(record.pid).create_time()
    except psutil.Error:
        return False
    return abs(created - record.create_time) > CREATE_TIME_TOLERANCE


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(process: psutil.Process, send: Callable[[psutil.Process], None]) -> None:
    with contextlib.suppress(psutil.Error):  # gone already
        send(process)
