"""PID files under the run directory: `<name>.pid` (JSON) beside `<name>.log`.

A PID alone can name another process once ours is gone and the number is reused, so each
file also keeps the process's start time (`create_time`): only a live process with both the
same PID and the same start time is ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# psutil derives start times from clock ticks (1/100 s) since boot; equal within this.
CREATE_TIME_TOLERANCE = 0.05


@dataclass(frozen=True)
class PidRecord:
    name: str
    pid: int
    create_time: float
    order: int  # position in the plan it was started from: `down` stops in reverse
    port: int | None = None
    health_url: str | None = None

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
    def lock(self) -> Iterator[bool]:
        """Hold the run directory's lock (False: another `up` or `down` holds it), so two at
        once cannot both start a process. The kernel releases it when this process ends."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / ".lock").open("a") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def write(self, record: PidRecord) -> None:
        # Written whole then renamed: a reader never sees half a file.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.pid_path(record.name)
        tmp = path.with_suffix(".pid.tmp")
        tmp.write_text(json.dumps(asdict(record)) + "\n")
        os.replace(tmp, path)

    def read(self, name: str) -> PidRecord | None:
        """The record, or None when there is no file or it cannot be read (treated as stale)."""
        try:
            data = json.loads(self.pid_path(name).read_text())
            return PidRecord(**data)
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
