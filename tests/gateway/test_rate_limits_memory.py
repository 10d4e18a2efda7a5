"""The in-process counters: a fixed window per key, opened by its first increment, and a
sweep that keeps memory bounded without costing each request every counter."""

from __future__ import annotations

from easel.gateway.rate_limits_memory import SWEEP_EVERY, MemoryCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_window_opens_at_the_first_increment_and_closes_after_it() -> None:
    clock = Clock()
    counters = MemoryCounters(clock)
    assert await counters.get_expiry("k") == clock.now  # no window yet
    assert [await counters.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert await counters.get_expiry("k") == 1060.0
    clock.now = 1059.9
    assert await counters.incr("k", 60) == 4
    clock.now = 1060.0
    assert await counters.get_expiry("k") == clock.now
    assert await counters.incr("k", 60) == 1  # a new window
    assert await counters.get_expiry("k") == 1120.0


async def test_keys_count_apart() -> None:
    counters = MemoryCounters(Clock())
    await counters.incr("a", 60)
    assert await counters.incr("b", 60) == 1
    assert await counters.incr("a", 60, amount=2) == 3


async def test_expired_counters_are_swept_once_a_minute() -> None:
    clock = Clock()
    counters = MemoryCounters(clock)
    for n in range(100):
        await counters.incr(f"address:{n}", 1)
    clock.now += 2
    await counters.incr("late", 60)
    assert len(counters) == 101  # expired, but not swept: once a minute, not per request
    clock.now = 1000.0 + SWEEP_EVERY
    await counters.incr("later", 60)
    assert len(counters) == 2
