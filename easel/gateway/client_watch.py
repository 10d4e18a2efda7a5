"""Abandon an upstream exchange when the client disconnects.

`with ClientWatch(receive, body_sent): await ...` runs the block in the request's own
task while a watcher task waits for the client's disconnect; if it comes first, the
watcher cancels the block (as `asyncio.timeout` does: cancel, then `uncancel` on the way
out) and the block ends with `ClientGone`. The exchange then unwinds in place, which closes
its upstream connection, so the service sees the disconnect too (and can cancel work).

Why not a second task for the exchange and `asyncio.wait` on both: that costs a task, its
scheduling and the wait's futures on every proxied request, for the rare one whose client
leaves.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from starlette.types import Receive


class ClientGone(Exception):
    """The client disconnected before the service answered."""


async def _until_client_gone(receive: Receive, body_sent: asyncio.Event) -> None:
    await body_sent.wait()
    # With the body read, the only message left for this request is the disconnect.
    while (await receive())["type"] != "http.disconnect":
        pass


class ClientWatch:
    """`with ClientWatch(receive, body_sent):` see the module's docstring."""

    def __init__(self, receive: Receive, body_sent: asyncio.Event) -> None:
        self._receive = receive
        self._body_sent = body_sent
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._inside = False
        self._cancelled = False  # by the watcher

    def __enter__(self) -> ClientWatch:
        self._task = asyncio.current_task()
        self._inside = True
        self._watcher = asyncio.ensure_future(_until_client_gone(self._receive, self._body_sent))
        self._watcher.add_done_callback(self._watched)
        return self

    def _watched(self, watcher: asyncio.Task[None]) -> None:
        if watcher.cancelled():
            return
        if watcher.exception() is None and self._inside and self._task is not None:
            # Only while the task is suspended inside the block: it is, as this runs.
            self._cancelled = True
            self._task.cancel()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._inside = False
        if self._watcher is not None:
            self._watcher.cancel()
        if not self._cancelled or self._task is None:
            return
        # Ours, whatever it became on the way out (a transport may turn a cancel into
        # its own error): unless someone else cancels the task too, the client left.
        if self._task.uncancel() == 0 and exc is not None:
            raise ClientGone from None
