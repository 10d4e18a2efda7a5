"""An HTTP + WebSocket client of one ComfyUI server (protocol: ComfyUI 0.33).

One websocket, `/ws?clientId=<ours>`, stays open for the engine's life: ComfyUI sends a
prompt's execution events only to the socket whose id the prompt was posted with, so
every prompt is posted with this client's id and its events are routed here by
`prompt_id` to whoever subscribed. When the socket drops (ComfyUI restarted, network)
it is reopened with doubling backoff; `epoch` counts connections so a waiter can tell
that events may have been missed and look at `/history` instead.

Errors are translated here: unreachable -> ServiceUnavailable (503), no answer in time ->
GatewayTimeout (504), any other unexpected answer -> BadGateway (502). A `POST /prompt`
refused with 400 is returned as a value (`PromptRejected`) for the engine to explain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from easel.core.errors import BadGateway, EaselError, GatewayTimeout, ServiceUnavailable

log = logging.getLogger("easel.generation.comfyui")

# (type, data, epoch) of one websocket event; epoch: the connection it came on, so a
# waiter can tell whether two events came on one socket (nothing between them was lost).
Message = tuple[str, dict[str, Any], int]


@dataclass(frozen=True)
class PromptRejected:
    """ComfyUI's 400 answer to `POST /prompt`: `{"error": {...}, "node_errors": {...}}`."""

    body: dict[str, Any]


class ComfyUIClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        backoff: float,
        backoff_max: float,
        client_id: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.client_id = client_id or f"easel-{uuid.uuid4().hex}"
        self.connected = False
        self.epoch = 0  # websocket connections made so far
        self.last_error: str | None = "not connected yet"
        self.system_stats: dict[str, Any] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._subscribers: dict[str, asyncio.Queue[Message]] = {}
        self._changed = asyncio.Condition()
        self._retry_now = asyncio.Event()
        self._attempted = asyncio.Event()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the session and the websocket loop; wait (bounded) for the first attempt,
        so that health is accurate from the start."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout, connect=self.connect_timeout)
        )
        self._loop_task = asyncio.create_task(self._connection_loop())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), self.connect_timeout)

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "ComfyUIClient.start() was not called"
        return self._session

    async def wait_connected(self, timeout: float) -> bool:
        """True once the websocket is open; cuts a reconnect backoff short to try now."""
        if self.connected:
            return True
        self._retry_now.set()
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.connected), timeout)
        return self.connected

    async def _set_connected(self, connected: bool) -> None:
        async with self._changed:
            self.connected = connected
            if connected:
                self.epoch += 1
            self._changed.notify_all()

    async def _connection_loop(self) -> None:
        delay = self.backoff
        while True:
            try:
                async with self.session.ws_connect(
                    f"{self.base_url}/ws",
                    params={"clientId": self.client_id},
                    heartbeat=self.timeout,  # a half-open socket is noticed, not trusted
                    timeout=aiohttp.ClientWSTimeout(ws_close=self.connect_timeout),
                ) as ws:
                    self.system_stats = await self.get_json("/system_stats")
                    self.last_error = None
                    await self._set_connected(True)
                    self._attempted.set()
                    log.info("connected to ComfyUI at %s", self.base_url)
                    delay = self.backoff
                    async for message in ws:
                        if message.type is aiohttp.WSMsgType.TEXT:
                            self._dispatch(message.data)
                        elif message.type is aiohttp.WSMsgType.ERROR:
                            break
                        # BINARY frames are previews; not forwarded (see engine docstring).
                self.last_error = "ComfyUI closed the websocket"
            except (aiohttp.ClientError, OSError, TimeoutError, EaselError) as exc:
                self.last_error = f"ComfyUI at {self.base_url} is unreachable: {_describe(exc)}"
            if self.connected:
                log.warning("lost ComfyUI at %s: %s", self.base_url, self.last_error)
            await self._set_connected(False)
            self._attempted.set()
            self._retry_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry_now.wait(), delay)
            delay = min(delay * 2, self.backoff_max)

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
            kind, data = message["type"], message.get("data") or {}
        except (ValueError, KeyError, TypeError):
            log.warning("ComfyUI sent an unreadable websocket message: %.200s", text)
            return
        queue = (
            self._subscribers.get(str(data.get("prompt_id"))) if isinstance(data, dict) else None
        )
        if queue is not None:
            queue.put_nowait((kind, data, self.epoch))

    # ---- events --------------------------------------------------------------------------
    def subscribe(self, prompt_id: str, queue: asyncio.Queue[Message]) -> None:
        """Route `prompt_id`'s events to `queue`; subscribe before posting the prompt."""
        self._subscribers[prompt_id] = queue

    def unsubscribe(self, prompt_id: str) -> None:
        self._subscribers.pop(prompt_id, None)

    # ---- HTTP ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _call(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            async with self.session.request(method, self.base_url + path, **kwargs) as response:
                yield response
        except TimeoutError as exc:
            raise GatewayTimeout(
                f"ComfyUI at {self.base_url} did not answer {method} {path} within "
                f"{self.timeout:g}s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ServiceUnavailable(
                f"ComfyUI at {self.base_url} is unreachable: {_describe(exc)}",
                headers={"Retry-After": "5"},
            ) from exc

    async def _expect_ok(self, response: aiohttp.ClientResponse, what: str) -> None:
        if response.status != 200:
            text = (await response.text())[:300]
            raise BadGateway(f"ComfyUI answered {response.status} to {what}: {text}")

    async def _ended(self, response: aiohttp.ClientResponse, what: str) -> None:
        """An answer whose body says nothing (or nothing we use), read to its end all the
        same: aiohttp closes a connection whose answer was left unread, so the next call
        would pay a new TCP connection (measured: one per `POST /prompt`)."""
        await self._expect_ok(response, what)
        await response.read()

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        async with self._call("GET", path, params=params) as response:
            await self._expect_ok(response, f"GET {path}")
            try:
                return await response.json(content_type=None)
            except ValueError as exc:
                raise BadGateway(f"ComfyUI answered GET {path} with no JSON") from exc

    async def queue_prompt(
        self, graph: dict[str, Any], prompt_id: str, extra_data: dict[str, Any]
    ) -> PromptRejected | None:
        body = {
            "prompt": graph,
            "client_id": self.client_id,
            "prompt_id": prompt_id,
            "extra_data": extra_data,
        }
        async with self._call("POST", "/prompt", json=body) as response:
            if response.status == 400:
                try:
                    return PromptRejected(await response.json(content_type=None))
                except ValueError:
                    pass
            await self._ended(response, "POST /prompt")
        return None

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while it has not ended (or is unknown)."""
        entries = await self.get_json(f"/history/{prompt_id}")
        entry = entries.get(prompt_id) if isinstance(entries, dict) else None
        return entry if isinstance(entry, dict) else None

    async def in_queue(self, prompt_id: str) -> bool:
        """Whether the prompt is running or pending."""
        return await self._queued(prompt_id, "queue_running", "queue_pending")

    async def is_running(self, prompt_id: str) -> bool:
        return await self._queued(prompt_id, "queue_running")

    async def _queued(self, prompt_id: str, *lists: str) -> bool:
        queue = await self.get_json("/queue")
        items = [item for name in lists for item in queue.get(name, [])]
        return any(len(item) > 1 and item[1] == prompt_id for item in items)

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt this prompt if it is the one running; never whatever else runs."""
        async with self._call("POST", "/interrupt", json={"prompt_id": prompt_id}) as response:
            await self._ended(response, "POST /interrupt")

    async def delete_pending(self, prompt_ids: list[str]) -> None:
        async with self._call("POST", "/queue", json={"delete": prompt_ids}) as response:
            await self._ended(response, "POST /queue")

    async def upload_image(self, data: bytes, filename: str, subfolder: str) -> str:
        """Upload into ComfyUI's input folder; returns the name LoadImage takes."""
        form = aiohttp.FormData()
        form.add_field("image", data, filename=filename, content_type="image/png")
        form.add_field("type", "input")
        form.add_field("subfolder", subfolder)
        form.add_field("overwrite", "true")
        async with self._call("POST", "/upload/image", data=form) as response:
            await self._expect_ok(response, "POST /upload/image")
            answer = await response.json(content_type=None)
        name, folder = str(answer["name"]), str(answer.get("subfolder") or "")
        return f"{folder}/{name}" if folder else name

    async def view(self, filename: str, subfolder: str, kind: str) -> bytes:
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        async with self._call("GET", "/view", params=params) as response:
            await self._expect_ok(response, f"GET /view {subfolder}/{filename}")
            data: bytes = await response.read()
            return data


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
