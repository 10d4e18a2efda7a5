"""CpuPool: CPU-bound work off the event loop, in a bounded number of threads.

At most `workers` calls run at once (OpenCV and Pillow release the GIL, so they use that
many cores); at most `max_waiting` more wait for a thread, in arrival order; beyond that a
request is refused at once with 503 and `Retry-After` rather than queued without bound
(each waiting request holds its decoded body). A waiting call whose client disconnects is
dropped before it starts; a started call runs to its end (threads cannot be interrupted),
which is why every op must be bounded on its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

from easel.core.errors import ClientGone, ServiceUnavailable

T = TypeVar("T")
RETRY_AFTER_S = 1


async def until_disconnected(request: Request) -> None:
    # The body is read already, so the next message can only be the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


class CpuPool:
    def __init__(self, *, workers: int, max_waiting: int, name: str = "cpu") -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(workers)
        self._running = 0
        self._waiting = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def stats(self) -> dict[str, int]:
        return {"workers": self.workers, "running": self._running, "waiting": self._waiting}

    async def run(self, fn: Callable[..., T], *args: Any, request: Request | None = None) -> T:
        """`fn(*args)` in a thread of the pool. ServiceUnavailable when the queue is full;
        ClientGone when `request`'s client left while it waited."""
        if self._slots.locked() and self._waiting >= self.max_waiting:
            raise ServiceUnavailable(
                f"busy: {self._running} operations running and {self._waiting} waiting; "
                f"try again in {RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._waiting += 1
        try:
            await self._take_slot(request)
        finally:
            self._waiting -= 1
        self._running += 1
        loop = asyncio.get_running_loop()
        future = self._executor.submit(functools.partial(fn, *args))
        # The slot is free when the thread is, even if this task is cancelled meanwhile.
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._running -= 1
        self._slots.release()

    async def _take_slot(self, request: Request | None) -> None:
        if request is None or not self._slots.locked():
            # A free slot is taken without waiting: there is no wait in which the client
            # could leave, so no watcher tasks are started.
            await self._slots.acquire()
            return
        taking = asyncio.ensure_future(self._slots.acquire())
        leaving = asyncio.ensure_future(until_disconnected(request))
        try:
            await asyncio.wait({taking, leaving}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside (in-process, the gateway does so)
            leaving.cancel()
            self._give_back(taking)
            raise
        leaving.cancel()
        if leaving.done() and not leaving.cancelled():
            leaving.exception()  # retrieved: a failed read of the connection counts as gone
            self._give_back(taking)
            raise ClientGone("the client disconnected while its operation waited")

    def _give_back(self, taking: asyncio.Future[Any]) -> None:
        """Cancel a slot request, or release the slot if it was granted already."""
        if taking.done() and not taking.cancelled():
            self._slots.release()
        else:
            taking.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
