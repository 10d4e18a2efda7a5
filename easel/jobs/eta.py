"""How long until a job ends: recomputed at every status read.

From three things: how long comparable jobs took recently (`Durations`: same model, mode,
size and steps; else coarser matches; else all recent jobs), how far the running jobs
are (their elapsed time, and their progress once they report it), and the job's place in
the queue, taken in turn by as many workers as are known to be running jobs.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable
from typing import Any

from easel.jobs.models import Job

Shape = tuple[Any, ...]


def _mode(request: dict[str, Any]) -> str:
    """The request's mode, inferred from its images as the generation service does."""
    if request.get("mode"):
        return str(request["mode"])
    if request.get("mask_image") is not None:
        return "inpaint"
    return "edit" if request.get("input_image") is not None else "text-to-image"


def shapes(request: dict[str, Any]) -> list[Shape]:
    """What makes jobs comparable, finest first: (model, mode, size, steps), (model, mode,
    size), (model, mode), then () for all jobs. Absent fields (defaults) compare equal."""
    model, mode = request.get("model"), _mode(request)
    size = (request.get("width"), request.get("height"))
    return [(model, mode, size, request.get("steps")), (model, mode, size), (model, mode), ()]


class Durations:
    """Run times (start to end) of recently finished jobs, by shape."""

    def __init__(self, finished: Iterable[Job]) -> None:
        self._by_shape: dict[Shape, list[float]] = {}
        for job in finished:
            if job.started_at is None or job.finished_at is None:
                continue
            took = job.finished_at - job.started_at
            for shape in shapes(job.request):
                self._by_shape.setdefault(shape, []).append(took)

    def expected(self, request: dict[str, Any]) -> float | None:
        """The median run time of the closest comparable jobs; None without any."""
        for shape in shapes(request):
            if found := self._by_shape.get(shape):
                return statistics.median(found)
        return None

    def typical(self) -> float | None:
        """The median run time of all recent jobs; None without any."""
        found = self._by_shape.get(())
        return statistics.median(found) if found else None


def remaining(job: Job, durations: Durations, *, now: float) -> float | None:
    """Seconds a running job has left: from its progress once it reports some (the pace
    so far), else its comparable jobs' duration less its elapsed time (0 when late)."""
    elapsed = max(0.0, now - (job.started_at or now))
    if job.progress_total and job.progress_step:
        done = job.progress_step / job.progress_total
        return max(0.0, elapsed / done - elapsed)
    expected = durations.expected(job.request)
    return None if expected is None else max(0.0, expected - elapsed)


def queued_eta(
    own: float,
    *,
    position: int,
    running: list[float],
    each_ahead: float,
    workers: int,
) -> float:
    """Seconds until a queued job ends: the `position` jobs ahead (`each_ahead` seconds
    each) and then this one (`own`) go, in order, to whichever of the `workers` is free
    first; those busy now are free after their `running` remainders."""
    free_at = sorted(running) + [0.0] * max(0, workers - len(running))
    heapq.heapify(free_at)
    for _ in range(position):
        heapq.heappush(free_at, heapq.heappop(free_at) + each_ahead)
    return free_at[0] + own
