"""PID files under the run directory: `<name>.pid` (JSON) beside `<name>.log`, and the
watchdog's own (`watchdog.json`, beside `watchdog.log`; not a `.pid`: it is no pod process).

A PID alone can name another process once ours is gone and the number is reused, so each
file also keeps the process's start time (`create_time`): only a live process with both the
same PID and the same start time is ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# psutil derives start times from clock ticks (1/100 s) since boot; equal within this.
CREATE_TIME_TOLERANCE = 0.05
WATCHDOG = "watchdog"
LOCK_POLL_S = 0.05


@dataclass(frozen=True)
class PidRecord:
    name: str
    pid: int
    create_time: float
    order: int  # position in the plan it was started from: `down` stops in reverse
    port: int | None = None
    health_url: str | None = None
    # Kept by the watchdog across restarts: how many, how the last one before this ended
    # (a Popen return code: negative is a signal; None with a time: not known), and why it
    # is not restarted again (the process is then gone).
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_at: float | None = None
    gave_up: str | None = None

    def process(self) -> psutil.Process | None:
        """Our process when it is still alive, else None (gone, a zombie, or a reused PID)."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) > CREATE_TIME_TOLERANCE:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return process

    @property
    def alive(self) -> bool:
        return self.process() is not None


class PidFiles:
    """The run directory: one PID file and one log per process."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    @contextlib.contextmanager
    def lock(self, wait_s: float = 0.0) -> Iterator[bool]:
        """Hold the run directory's lock (False: another `up`, `down` or a restart by the
        watchdog held it for `wait_s`), so two at once cannot both start or stop a process.
        The kernel releases it when this process ends."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        with (self.run_dir / ".lock").open("a") as file:
            while True:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(LOCK_POLL_S)
            yield True

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def watchdog_path(self) -> Path:
        return self.run_dir / f"{WATCHDOG}.json"

    def write(self, record: PidRecord) -> None:
        self._write(self.pid_path(record.name), record)

    def read(self, name: str) -> PidRecord | None:
        """The record, or None when there is no file or it cannot be read (treated as stale)."""
        return self._read(self.pid_path(name))

    def write_watchdog(self, record: PidRecord) -> None:
        self._write(self.watchdog_path(), record)

    def read_watchdog(self) -> PidRecord | None:
        return self._read(self.watchdog_path())

    def remove_watchdog(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.watchdog_path().unlink()

    def _write(self, path: Path, record: PidRecord) -> None:
        # Written whole then renamed: a reader never sees half a file.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(record)) + "\n")
        os.replace(tmp, path)

    @staticmethod
    def _read(path: Path) -> PidRecord | None:
        try:
            return PidRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def exists(self, name: str) -> bool:
        return self.pid_path(name).exists()

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pid_path(name).unlink()

    def names(self) -> list[str]:
        """Every process with a PID file, readable or not."""
        if not self.run_dir.is_dir():
            return []
        return sorted(path.stem for path in self.run_dir.glob("*.pid"))

    def records(self) -> list[PidRecord]:
        """Every readable record, in start order."""
        found = (self.read(name) for name in self.names())
        return sorted((r for r in found if r is not None), key=lambda r: r.order)
