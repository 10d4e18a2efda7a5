"""Per-process logs: the last lines, and following them as they grow (`easel logs`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from easel.pod.pidfiles import PidFiles

BLOCK = 64 * 1024


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines, read from the end (a log may be large)."""
    if lines <= 0:
        return ""
    try:
        with path.open("rb") as file:
            end = file.seek(0, os.SEEK_END)
            position, data = end, b""
            while position > 0 and data.count(b"\n") <= lines:
                step = min(BLOCK, position)
                position -= step
                file.seek(position)
                data = file.read(step) + data
    except FileNotFoundError:
        return ""
    return b"\n".join(data.rstrip(b"\n").split(b"\n")[-lines:]).decode(errors="replace")


def log_paths(names: list[str], files: PidFiles) -> dict[str, Path]:
    """The logs of `names` (the plan's processes, in start order), then any other log in the
    run directory (from other settings)."""
    paths = {name: files.log_path(name) for name in names}
    if files.run_dir.is_dir():
        for path in sorted(files.run_dir.glob("*.log")):
            paths.setdefault(path.stem, path)
    return paths


def follow(
    paths: Mapping[str, Path],
    write: Callable[[str, str], None],
    *,
    poll_interval: float = 0.25,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Call `write(name, text)` with whatever is appended to each log from now on, until
    `keep_going()` is false (Ctrl-C for a person). A log that shrinks was rotated or
    truncated: read it again from its start."""
    offsets = {name: _size(path) for name, path in paths.items()}
    while keep_going():
        for name, path in paths.items():
            size = _size(path)
            if size < offsets[name]:
                offsets[name] = 0
            if size > offsets[name]:
                with path.open("rb") as file:
                    file.seek(offsets[name])
                    chunk = file.read(size - offsets[name])
                # Only whole lines; a partial last line waits for its end.
                whole = chunk[: chunk.rfind(b"\n") + 1]
                offsets[name] += len(whole)
                if whole:
                    write(name, whole.decode(errors="replace"))
        time.sleep(poll_interval)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
