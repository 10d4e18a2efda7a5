"""Stop a long-running loop whose cancellation a library swallowed.

Python 3.11's `wait_for` can swallow a `CancelledError` that arrives as its inner call
finishes (seen under redis-py's reads, in the jobs benchmark and in the queue-metrics test
under load): the task stays marked as cancelling but runs on, and whatever awaits it (a
lifespan's shutdown, a worker's stop) waits forever. A loop calls `stop_if_cancelled()` at
the top of each round to end anyway.
"""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
