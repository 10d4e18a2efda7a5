"""`easel worker`: a job worker process of its own, beside (or far from) the job manager."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from contextlib import AsyncExitStack

from easel.compose.apps import connector
from easel.compose.services import service_named
from easel.compose.settings import EaselSettings
from easel.core.image_store import ImageStore
from easel.jobs.runtime import open_store, open_webhooks, worker_config
from easel.jobs.worker import Worker

log = logging.getLogger("easel.jobs.standalone")


async def run_worker(settings: EaselSettings, *, concurrency: int | None = None) -> None:
    """Run until SIGTERM/SIGINT; a job cut off by a kill is recovered by another worker.
    Generation is reached at its URL, or loaded in this process when it has none."""
    jobs = settings.jobs
    async with AsyncExitStack() as stack:
        store = await open_store(jobs)
        stack.push_async_callback(store.close)
        config = worker_config(jobs)
        if concurrency:
            config = dataclasses.replace(config, concurrency=concurrency)
        webhooks = await open_webhooks(jobs, stack)
        worker = Worker(
            store=store,
            results=ImageStore(jobs.images_path),
            generation=await connector(service_named("generation"), settings)(stack),
            config=config,
            notify=webhooks.notify,
        )
        log.info("%s started (%s store)", worker.worker_id, jobs.jobs_backend)
        task = asyncio.create_task(worker.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("%s stopped", worker.worker_id)
