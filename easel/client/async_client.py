"""`AsyncClient`: the SDK over an asyncio httpx client, with `Client`'s methods awaited.
The shared call modules build the requests and read the answers; this class only sends
them (retried) and reads streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, TypeVar, Unpack

from PIL import Image

from easel.client import generation_calls as gen
from easel.client import image_calls as img
from easel.client import options as opt
from easel.client import system_calls as system
from easel.client.async_io import AsyncBase
from easel.client.call import Call, identity
from easel.client.errors import NetworkError
from easel.client.images import ImageInput
from easel.client.results import (
    DiffOutput,
    GenerationOutput,
    JobInfo,
    JobPage,
    MaskOutput,
    PreparedImage,
)
from easel.client.streams import generation_event, job_event
from easel.client.waiting import JobWatch, ProgressCallback
from easel.core.events import GenerationEvent, JobEvent

T = TypeVar("T")


class AsyncClient(AsyncBase):
    """An asyncio client of an easel server's public API: `Client`'s methods, awaited
    (`stream` and `events` are async iterators). `async with AsyncClient(...) as easel:`,
    or `await aclose()`; the options are `Client`'s."""

    # ---- generation: see `Client` for each method's behaviour ---------------------------
    async def generate(
        self, prompt: str | None = None, **fields: Unpack[opt.GenerationFields]
    ) -> GenerationOutput:
        """`Client.generate`, awaited (image links are fetched before it returns)."""
        return await self.output((await self._call(gen.generate(prompt, fields))).raw)

    async def stream(
        self, prompt: str | None = None, **fields: Unpack[opt.GenerationFields]
    ) -> AsyncIterator[GenerationEvent]:
        """`Client.stream`, as an async iterator."""
        call = Call("POST", gen.STREAM, identity, gen.stream_body(prompt, fields))
        async with aclosing(self._events(call)) as stream:
            async for sse in stream:
                if (event := generation_event(sse)) is not None:
                    yield event

    async def output(self, result: dict[str, Any]) -> GenerationOutput:
        """`Client.output`; its image links fetched now (all at once), since reading
        `images` cannot await."""
        urls = [
            str(item["url"])
            for item in result.get("images", [])
            if item.get("image") is None and item.get("url")
        ]
        fetched = await asyncio.gather(*(self.fetch_image(url) for url in urls))
        return GenerationOutput(result, fetch=dict(zip(urls, fetched, strict=True)).__getitem__)

    async def fetch_image(self, url: str) -> bytes:
        """`Client.fetch_image`, awaited."""
        return await self._bytes(gen.image(url, self.base_url))

    async def styles(self) -> list[str]:
        return await self._call(system.styles())

    async def models(self) -> dict[str, Any]:
        return await self._call(system.models())

    async def load_model(self, name: str) -> dict[str, Any]:
        """`Client.load_model`, awaited."""
        return await self._call(system.load_model(name))

    async def unload_model(self, name: str) -> dict[str, Any]:
        """`Client.unload_model`, awaited."""
        return await self._call(system.unload_model(name))

    async def workflows(self) -> dict[str, Any]:
        return await self._call(system.workflows())

    async def health(self, *, deep: bool = False) -> dict[str, Any]:
        return await self._call(system.health(deep=deep))

    # ---- jobs ---------------------------------------------------------------------------
    async def submit(self, prompt: str | None = None, **fields: Unpack[opt.JobFields]) -> str:
        return await self._call(gen.submit(prompt, fields))

    async def status(self, task_id: str) -> JobInfo:
        return await self._call(gen.status(task_id))

    async def result(self, task_id: str) -> GenerationOutput:
        return await self.output((await self._call(gen.result(task_id))).raw)

    async def cancel(self, task_id: str) -> JobInfo:
        return await self._call(gen.cancel(task_id))

    async def jobs(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JobPage:
        return await self._call(gen.jobs(status=status, limit=limit, cursor=cursor))

    async def events(self, task_id: str, *, after: int = 0) -> AsyncIterator[JobEvent]:
        """`Client.events`, as an async iterator."""
        headers = {"Last-Event-ID": str(after)} if after else {}
        call = Call("GET", gen.events_path(task_id), identity, headers=headers)
        async with aclosing(self._events(call)) as stream:
            async for sse in stream:
                if (event := job_event(sse)) is not None:
                    yield event

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationOutput:
        """`Client.wait`, awaited (`on_progress` is a plain function)."""
        watch = JobWatch(task_id, timeout=timeout, on_progress=on_progress)
        while True:
            try:
                if (output := await self._follow(watch)) is not None:
                    return await self.output(output.raw)
            except NetworkError:
                pass  # the stream dropped: the status says whether the job is still going
            if watch.see_status(await self.status(task_id)):
                return await self.result(task_id)
            await asyncio.sleep(watch.next_delay())

    # ---- images -------------------------------------------------------------------------
    async def prepare(self, image: ImageInput) -> PreparedImage:
        return await self._call(img.prepare(image))

    async def smart_mask(
        self,
        image: ImageInput | PreparedImage,
        points: Sequence[img.Point] = (),
        labels: Sequence[int] | None = None,
        box: img.Box | None = None,
        **options: Unpack[opt.SmartMaskOptions],
    ) -> MaskOutput:
        return await self._call(img.smart_mask(image, points, labels, box, options))

    async def resize(self, image: ImageInput, **options: Unpack[opt.ResizeOptions]) -> Image.Image:
        return await self._call(img.resize(image, options))

    async def crop(
        self,
        image: ImageInput,
        x: int,
        y: int,
        width: int,
        height: int,
        **options: Unpack[opt.Encoding],
    ) -> Image.Image:
        box = {"x": x, "y": y, "width": width, "height": height}
        return await self._call(img.crop(image, {**box, **options}))

    async def convert(
        self, image: ImageInput, output_format: str, quality: int | None = None
    ) -> Image.Image:
        options = {"output_format": output_format, "quality": quality}
        return await self._call(img.convert(image, options))

    async def extract_object(
        self, image: ImageInput, mask: ImageInput, **options: Unpack[opt.ExtractOptions]
    ) -> Image.Image:
        return await self._call(img.extract_object(image, mask, options))

    async def diff(self, image_a: ImageInput, image_b: ImageInput) -> DiffOutput:
        return await self._call(img.diff(image_a, image_b))

    async def canny(self, image: ImageInput, **options: Unpack[opt.CannyOptions]) -> Image.Image:
        return await self._call(img.canny(image, options))

    async def refine_mask(
        self, mask: ImageInput, **options: Unpack[opt.MaskOptions]
    ) -> Image.Image:
        return await self._call(img.refine_mask(mask, options))

    async def _follow(self, watch: JobWatch) -> GenerationOutput | None:
        call = Call("GET", gen.events_path(watch.task_id), identity, headers=watch.resume_headers())
        async with aclosing(self._events(call, read_timeout=watch.remaining())) as stream:
            async for sse in stream:
                if (output := watch.see(sse)) is not None:
                    return output
        return None
