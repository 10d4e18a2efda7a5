"""The rate limit counters: in this process (`rate_limits_memory`), or in Redis through
the `limits` library (its atomic increment-and-expire script, redis-py's asyncio client),
so that several gateways share them.

A fixed window of one minute per counter, opened by its first request (limits'
fixed-window strategy): exact, one counter per key and class, and a reset time a client
can be told. When Redis cannot be reached the limits fail open (every request passes,
without headers): an outage of the counters must never turn into an outage of the API.
That is said once when it starts, and again when Redis answers.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.errors import StorageError

from easel.gateway.rate_limits_memory import MemoryCounters

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

log = logging.getLogger("easel.gateway.rate_limits")

WINDOW_SECONDS = 60
# A counter lives next door: a Redis that takes longer than this is treated as down.
REDIS_TIMEOUT = 0.5
# While Redis is down, how long requests pass without asking it again, so that one
# whose packets vanish does not cost every request a timeout.
RETRY_DOWN_AFTER = 5.0


@dataclass(frozen=True)
class Window:
    """One counter after a request: whether it passed, and what the headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds until the window closes, at least 1

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]


class Counters(Protocol):
    """What the gateway uses of a `limits` storage."""

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    async def get_expiry(self, key: str) -> float: ...


def _redis_storage(pool: ConnectionPool, prefix: str) -> RedisStorage:
    # The pool is ours, so that the timeouts are ours and it is closed at shutdown; the
    # URI then only names the kind of storage (redis-py's asyncio client).
    options: dict[str, object] = {"connection_pool": pool}
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=prefix,
        wrap_exceptions=True,
        **options,  # type: ignore[arg-type]  # limits types its options as scalars
    )


class RateLimitStore:
    """Counts requests per (class, subject) against a per-minute limit."""

    def __init__(self, *, redis_url: str | None = None, prefix: str = "easel:rate-limit") -> None:
        self._pool: ConnectionPool | None = None
        self.storage: Counters
        if redis_url is None:
            self.storage = MemoryCounters()
        else:
            from redis.asyncio import ConnectionPool  # only where limits are shared

            self._pool = ConnectionPool.from_url(
                redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
            self.storage = _redis_storage(self._pool, prefix)
        self._items: dict[int, RateLimitItem] = {}
        self._down_since: float | None = None
        self._retry_at = 0.0

    def _item(self, per_minute: int) -> RateLimitItem:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    async def hit(self, per_minute: int, *identifiers: str) -> Window | None:
        """Count one request; None when the counters cannot be reached (fail open)."""
        if self._down_since is not None and time.monotonic() < self._retry_at:
            return None
        item = self._item(per_minute)
        key = item.key_for(*identifiers)
        # What FixedWindowRateLimiter.hit and .get_window_stats do, in two round trips
        # instead of three: the count comes back from the increment.
        try:
            count = await self.storage.incr(key, item.get_expiry())
            reset_at = await self.storage.get_expiry(key)
        except (StorageError, OSError) as exc:
            self._went_down(exc)
            return None
        if self._down_since is not None:
            log.warning(
                "rate limit counters (Redis) answer again after %.0f s; limits apply again",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        reset = min(WINDOW_SECONDS, max(1, math.ceil(reset_at - time.time())))
        return Window(count <= per_minute, per_minute, max(0, per_minute - count), reset)

    def _went_down(self, exc: Exception) -> None:
        now = time.monotonic()
        self._retry_at = now + RETRY_DOWN_AFTER
        if self._down_since is None:
            self._down_since = now
            cause = getattr(exc, "storage_error", exc)
            log.warning(
                "rate limit counters (Redis) unreachable: requests pass unlimited until "
                "it answers (%s: %s)",
                type(cause).__name__,
                cause,
            )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
