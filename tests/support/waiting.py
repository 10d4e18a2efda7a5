"""Deadlines that wait on progress, not on the machine's speed.

A loaded machine runs a 40-step job at a fraction of its usual pace. A fixed deadline then
fails a test whose job is still advancing; this one only gives up when nothing observable
has changed for `stall` seconds (and, as a backstop against a livelock, after `limit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

# What a slow machine may need for a whole test that waits on progress this way; the
# suite's default per-test timeout is sized for a quiet one.
SLOW_MACHINE_TIMEOUT = 900


class ProgressDeadline:
    def __init__(
        self,
        stall: float,
        *,
        limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall = stall
        self._clock = clock
        now = clock()
        self._last_change = now
        self._hard = now + (limit if limit is not None else 20 * stall)
        self._seen: Hashable = object()

    def observe(self, state: Hashable) -> None:
        """Note what was just read; a change counts as progress and extends the deadline."""
        if state != self._seen:
            self._seen = state
            self._last_change = self._clock()

    def expired(self) -> bool:
        now = self._clock()
        return now - self._last_change > self.stall or now > self._hard
