"""The job queue's gauges on the job manager's `/metrics`, read from the store.

Prometheus collects synchronously and the store is async, and a scrape should cost the
store nothing: the maintenance loop (`easel.jobs.runtime.maintain`) refreshes the gauges
every EASEL_JOBS_HEARTBEAT seconds and a scrape reads what it last saw. The numbers are the
store's, so with workers in other processes (split mode, `easel worker`) they describe the
whole queue, the same on every job manager that shares the store (aggregate them with
`max`, not `sum`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from easel.jobs.store.base import JobStore, QueueStats


class QueueMetrics:
    """The gauges; label sets are bounded (one per job status)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(
            "easel_jobs", "Jobs in the store, by status.", ["status"], registry=registry
        )
        self.oldest_queued_age = Gauge(
            "easel_jobs_oldest_queued_age_seconds",
            "How long the oldest queued job has waited since it was submitted (0: none queued).",
            registry=registry,
        )
        self.retrying = Gauge(
            "easel_jobs_retrying",
            "Queued or running jobs past their first attempt (a transient failure or a lost "
            "worker sent them back to the queue).",
            registry=registry,
        )
        self.live_workers = Gauge(
            "easel_jobs_live_workers",
            "Workers, in any process, seen alive within EASEL_JOBS_VISIBILITY_TIMEOUT.",
            registry=registry,
        )
        self.refreshed = Gauge(
            "easel_jobs_metrics_refreshed_timestamp_seconds",
            "When these job gauges were last read from the store (Unix seconds): a stale "
            "value means the store did not answer.",
            registry=registry,
        )

    async def refresh(self, store: JobStore, *, now: float, live_window: float) -> QueueStats:
        """Read the store at `now`; a worker counts as live when seen within `live_window`."""
        stats = await store.queue_stats(live_since=now - live_window)
        self.show(stats, now=now)
        return stats

    def show(self, stats: QueueStats, *, now: float) -> None:
        for status, count in stats.counts.items():
            self.jobs.labels(status.value).set(count)
        oldest = stats.oldest_queued_at
        self.oldest_queued_age.set(max(0.0, now - oldest) if oldest is not None else 0.0)
        self.retrying.set(stats.retrying)
        self.live_workers.set(stats.live_workers)
        self.refreshed.set(now)
