"""Waiting out an outage of the generation service or its engine (easel/jobs/failures.py).

A job whose generation service cannot be reached, or answers 503 while its health says it
cannot generate (ComfyUI down), keeps its worker and its attempt: the worker watches
generation's `GET /api/health` until it says `healthy`, then runs the job again. Real
restarts take tens of seconds (a ComfyUI server took 38-40 s to come back), far longer
than a few quick retries last, so the wait is bounded by a window of its own
(`EASEL_JOBS_OUTAGE_WINDOW`) and by the job's timeout, not by attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from easel.jobs.cancelling import stop_if_cancelled

# A health answer takes milliseconds; one that takes longer is as good as none.
_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Health:
    healthy: bool
    retry_after: float | None = None  # the health answer's own Retry-After, if any


async def probe(generation: httpx.AsyncClient) -> Health:
    """Generation's health now: `healthy` only when it answers so (unreachable, degraded,
    unhealthy or an unreadable answer are all not healthy)."""
    try:
        response = await generation.get("/api/health", timeout=_PROBE_TIMEOUT_S)
        status = response.json().get("status") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return Health(healthy=False)
    return Health(healthy=status == "healthy", retry_after=retry_after_of(response.headers))


def retry_after_of(headers: httpx.Headers) -> float | None:
    """A Retry-After in seconds (easel sends seconds; an HTTP date is read as none)."""
    try:
        value = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    return max(0.0, value)


class OutageWait:
    """One attempt's waits for generation to be back: `window_s` of waiting in all."""

    def __init__(
        self,
        generation: httpx.AsyncClient,
        *,
        poll_s: float,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.generation = generation
        self.poll_s = poll_s
        self.window_s = window_s
        self.clock = clock
        self.waited_s = 0.0

    async def until_back(self, retry_after: float | None) -> bool:
        """Sleep until generation says it is healthy: at least `retry_after` (its own word
        on when to come back), then a health poll every `poll_s` (or each answer's
        Retry-After). False when the window is spent first."""
        delay = max(self.poll_s, retry_after or 0.0)
        while True:
            stop_if_cancelled()
            left = self.window_s - self.waited_s
            if left <= 0:
                return False
            began = self.clock()
            await asyncio.sleep(min(delay, left))
            health = await probe(self.generation)
            self.waited_s += self.clock() - began
            if health.healthy:
                return True
            delay = max(self.poll_s, health.retry_after or 0.0)
