"""When an idle worker should look for work again, without looking all the time.

A store holds one `WorkSignal`. What the store itself does that may give a worker work (a
submit, a retry, a recovery, in this process) wakes its waiters at once; a claim that
found nothing runnable records when the first job backing off comes due, so the wait ends
then rather than at the next poll. Work that no signal reaches (another process's submit,
where the backend cannot tell) is found by the caller's poll, the wait's upper bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

_SOONEST_S = 0.01


class WorkSignal:
    def __init__(self) -> None:
        # A wake that came while nobody waited is kept until the next look: a submit landing
        # between a worker's empty claim and its wait is not slept through.
        self._woken = False
        self._waiters: set[asyncio.Future[None]] = set()
        self._due_at: float | None = None  # event-loop time the first backing-off job is due

    def wake(self) -> None:
        self._woken = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def looking(self) -> None:
        """A claim looks now: it sees whatever was woken for so far."""
        self._woken = False

    def claimed_nothing(self, *, next_due: float | None, now: float) -> None:
        """A claim at `now` (its caller's clock) found no runnable job; `next_due` is the
        earliest `not_before` of the queued ones (None: none queued)."""
        if next_due is None:
            self._due_at = None
            return
        # The callers' clock says when it is due; the wait runs on the loop's clock. Never
        # sooner than a moment from now: a job due already but not claimed (another store's
        # clock, a race) must not turn the wait into a spin.
        until_due = max(_SOONEST_S, next_due - now)
        self._due_at = asyncio.get_running_loop().time() + until_due

    def wait_s(self, timeout: float) -> float:
        """`timeout`, cut short to when the first backing-off job comes due."""
        if self._due_at is None:
            return max(0.0, timeout)
        until_due = self._due_at - asyncio.get_running_loop().time()
        return max(0.0, min(timeout, until_due))

    async def wait(
        self, timeout: float, *, changed: Callable[[], bool] | None = None, every: float = 0.1
    ) -> None:
        """Return when woken, when a backing-off job comes due, after `timeout`, or (with
        `changed`, a cheap check asked every `every` seconds) once it says True."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s(timeout)
        woken = loop.create_future()  # a future of the waiter's own loop, not the store's
        self._waiters.add(woken)
        try:
            if self._woken or deadline <= loop.time():
                await asyncio.sleep(0)  # a zero poll still lets the loop run
                return
            while not woken.done():
                left = deadline - loop.time()
                if left <= 0:
                    return
                await asyncio.wait({woken}, timeout=min(left, every) if changed else left)
                if not woken.done() and changed is not None and changed():
                    return
        finally:
            self._waiters.discard(woken)
            self._woken = False  # this wake is taken
