"""A warning when jobs wait and no worker takes them.

Workers leave no trace while idle, but an idle worker claims a queued job within its poll
interval, and a busy one heartbeats the job it runs. So jobs queued with none running, for
longer than `after_s`, mean that no worker is alive (or none reaches this store): said at
WARNING, then again every `after_s` while it lasts, not on every check.
"""

from __future__ import annotations

import logging

from easel.jobs.models import JobStatus
from easel.jobs.store.base import JobStore

log = logging.getLogger("easel.jobs")


class NoWorkerWarning:
    def __init__(self, *, after_s: float) -> None:
        self.after_s = after_s
        self._since: float | None = None  # when the queue was first seen stuck
        self._warned_at: float | None = None

    async def check(self, store: JobStore, *, now: float) -> bool:
        """Look at the store's counts at `now`; True when a warning was logged."""
        counts = await store.counts()
        queued, running = counts.get(JobStatus.QUEUED, 0), counts.get(JobStatus.RUNNING, 0)
        if not queued or running:
            self._since = self._warned_at = None
            return False
        if self._since is None:
            self._since = now
        last = self._warned_at if self._warned_at is not None else self._since
        if now - last < self.after_s:
            return False
        self._warned_at = now
        log.warning(
            "%d job(s) queued and none running for %.0fs: no worker is alive, or none "
            "reaches this store (start `easel worker`, or keep the in-process worker on: "
            "EASEL_JOBS_IN_PROCESS_WORKER=true)",
            queued,
            now - self._since,
            extra={"queued": queued},
        )
        return True
