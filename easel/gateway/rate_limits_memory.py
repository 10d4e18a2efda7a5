"""Rate limit counters in this process: the two operations the gateway uses of a `limits`
storage (`incr`, `get_expiry`), with the same fixed-window meaning.

Not limits' own `MemoryStorage`: it sweeps every live counter after each increment, so
one request costs O(counters) (17 ms with 20,000 live counters, measured), a cost that a
client with many addresses (IPv6 /64s are cheap) would put on every other request. This
one sweeps at most once a minute; a counter past its expiry counts as new, swept or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SWEEP_EVERY = 60.0  # seconds; counters live a window (a minute), so memory stays bounded


class MemoryCounters:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._next_sweep = clock() + SWEEP_EVERY

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add `amount` to `key`'s count, opening a window of `expiry` seconds if it has
        none; the new count. (No await inside: atomic on the event loop.)"""
        now = self._clock()
        self._sweep(now)
        count, expires = self._counts.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + expiry
        count += amount
        self._counts[key] = (count, expires)
        return count

    async def get_expiry(self, key: str) -> float:
        """When `key`'s window closes (as `time.time()`); now if it has none."""
        now = self._clock()
        expires = self._counts.get(key, (0, now))[1]
        return expires if expires > now else now

    def __len__(self) -> int:
        return len(self._counts)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY
        self._counts = {key: entry for key, entry in self._counts.items() if entry[1] > now}
