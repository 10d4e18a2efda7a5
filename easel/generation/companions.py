"""When a batch may wait for companions: only right after a call of its kind answered more
requests than now wait, and never longer than the batch window after its oldest request
could have started (it arrived, or that call ended).

A call that just ended answered clients who, in a closed loop (a load of clients, a UI's next
click), send again within milliseconds: waiting for them fills the next call, which is where
batching pays. A request with no such call behind it (an idle engine, a new kind of request, a
lone client whose last call had just its own request) has nobody to wait for and starts at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from easel.generation.engines.base import CallKey


@dataclass(frozen=True)
class _Recent:
    ended_at: float
    demand: int  # images of this key in circulation when its last call ended
    smallest: int  # the fewest images one of its requests asked for: what may come back


class Companions:
    """The batch window, read as an upper bound on waiting for requests about to come back."""

    def __init__(self, *, window_s: float, max_images: int) -> None:
        self.window_s = window_s
        self.max_images = max_images
        self._recent: dict[CallKey, _Recent] = {}

    def call_ended(
        self, key: CallKey, answered: list[int], waiting_images: int, now: float
    ) -> None:
        """A call of `key` ended at `now`, answering requests of `answered` images each
        (their clients may send again); `waiting_images` of its kind wait (they run next)."""
        # Forget what can no longer make anyone wait (a batch waits at most a window after
        # a first request that came within a window): the dict stays as small as the recent kinds.
        horizon = 2 * self.window_s
        self._recent = {k: r for k, r in self._recent.items() if now - r.ended_at < horizon}
        demand = min(sum(answered) + waiting_images, self.max_images)
        if self.window_s > 0 and key.shares and answered and demand > 1:
            self._recent[key] = _Recent(ended_at=now, demand=demand, smallest=min(answered))
        else:
            self._recent.pop(key, None)

    def wait_s(self, key: CallKey, waiting_images: int, since: float, now: float) -> float:
        """How long a batch of `key` holding `waiting_images`, its oldest request waiting
        since `since`, may still wait; 0: start now (nobody expected, enough there, a request
        like those answered would not fit, or the oldest came too late to be one of them)."""
        recent = self._recent.get(key)
        if recent is None or waiting_images >= recent.demand:
            return 0.0
        if waiting_images + recent.smallest > self.max_images:
            return 0.0
        # The window counts from when the oldest could start: a client answered last sends
        # again only after its answer is encoded and read, which under load takes a while.
        start = max(recent.ended_at, since)
        if start - recent.ended_at >= self.window_s:
            return 0.0
        return max(0.0, start + self.window_s - now)
