"""`easel worker`: a worker process of its own, beside (or far from) the job manager."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import AsyncExitStack

from easel.core.settings import Settings
from easel.jobs.app import make_generation_client, open_store, open_webhooks, worker_config
from easel.jobs.results import ResultFiles
from easel.jobs.worker import Worker

log = logging.getLogger("easel.jobs.standalone")


async def run_worker(settings: Settings, *, concurrency: int | None = None) -> None:
    """Run until SIGTERM/SIGINT; a job cut off by a kill is recovered by another worker."""
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        config = worker_config(settings)
        if concurrency:
            config = type(config)(**{**config.__dict__, "concurrency": concurrency})
        webhooks = await open_webhooks(settings, stack)
        worker = Worker(
            store=store,
            results=ResultFiles(settings.results_path),
            generation=await make_generation_client(settings, stack, None),
            config=config,
            notify=webhooks.notify,
        )
        log.info("%s started (%s store)", worker.worker_id, settings.jobs_backend)
        task = asyncio.create_task(worker.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("%s stopped", worker.worker_id)
