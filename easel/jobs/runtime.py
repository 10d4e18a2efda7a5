"""What the job manager app and a worker process both open: the store, webhooks, the
worker's configuration, and the maintenance loop."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from easel.core.outbound import OutboundClient
from easel.jobs.cancelling import stop_if_cancelled
from easel.jobs.liveness import NoWorkerWarning
from easel.jobs.manager import JobManager
from easel.jobs.queue_metrics import QueueMetrics
from easel.jobs.settings import JobsSettings
from easel.jobs.store.base import JobStore
from easel.jobs.webhooks import Webhooks, WebhookSender
from easel.jobs.worker import WorkerConfig, recover_stale

log = logging.getLogger("easel.jobs")
# How often the image store is swept by age (a walk of the whole folder): the images of
# synchronous `output: "url"` requests, which no job's sweep removes, go then.
IMAGE_SWEEP_EVERY_S = 600.0


async def open_store(settings: JobsSettings) -> JobStore:
    if settings.jobs_backend == "redis":
        from easel.jobs.store.redis import RedisJobStore

        return await RedisJobStore.connect(settings.redis_url, prefix=settings.jobs_redis_prefix)
    from easel.jobs.store.sqlite import SQLiteJobStore

    return await SQLiteJobStore.open(settings.data_dir / "jobs.db")


async def open_webhooks(settings: JobsSettings, stack: AsyncExitStack) -> Webhooks:
    """Webhook checks and deliveries; without EASEL_WEBHOOK_SECRET, jobs with a webhook
    are refused. Deliveries still under way are cancelled when `stack` closes."""
    sender = None
    if settings.webhook_secret is not None:
        outbound = OutboundClient(
            allow_private=settings.webhook_allow_private, limits=settings.outbound_limits
        )
        sender = WebhookSender(
            outbound=await stack.enter_async_context(outbound),
            secret=settings.webhook_secret.get_secret_value(),
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff,
            timeout_s=settings.webhook_timeout,
        )
    webhooks = Webhooks(sender)
    stack.push_async_callback(webhooks.aclose)
    return webhooks


def worker_config(settings: JobsSettings) -> WorkerConfig:
    return WorkerConfig(
        concurrency=settings.worker_concurrency,
        heartbeat_s=settings.jobs_heartbeat,
        visibility_timeout_s=settings.jobs_visibility_timeout,
        poll_interval_s=settings.worker_poll_interval,
        retry_backoff_s=settings.jobs_retry_backoff,
        health_poll_s=settings.jobs_health_poll,
        outage_window_s=settings.jobs_outage_window,
    )


async def maintain(
    manager: JobManager, settings: JobsSettings, *, gauges: QueueMetrics | None = None
) -> None:
    """Refresh the queue `gauges`; recover jobs of dead workers; remove jobs (and images)
    past their retention; warn while jobs wait and no worker takes them."""
    no_worker = NoWorkerWarning(after_s=settings.jobs_no_worker_warning)
    images_swept = 0.0
    while True:
        stop_if_cancelled()
        try:
            now = manager.clock()
            if gauges is not None:
                live_window = settings.jobs_visibility_timeout
                await gauges.refresh(manager.store, now=now, live_window=live_window)
            await no_worker.check(manager.store, now=now)
            await recover_stale(
                manager.store,
                now=now,
                visibility_timeout=settings.jobs_visibility_timeout,
                notify=manager.webhooks.notify if manager.webhooks else None,
            )
            cutoff = now - settings.jobs_retention
            for job in await manager.store.sweep(older_than=cutoff):
                for image in (job.result or {}).get("images", []):
                    manager.results.delete_unused(image["sha256"], since=cutoff)
            if now - images_swept >= IMAGE_SWEEP_EVERY_S:
                # Kept as long as jobs are (EASEL_JOBS_RETENTION): a job's images were
                # saved when it ended, so a job still kept keeps its images.
                await asyncio.to_thread(manager.results.sweep, older_than=cutoff)
                images_swept = now
        except Exception:
            log.exception("job maintenance failed; trying again")
        await asyncio.sleep(min(settings.jobs_heartbeat, 60))
