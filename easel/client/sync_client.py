"""`Client`: the SDK over a blocking httpx client. Requests are built and answers read by
the shared call modules; this class only sends them (retried) and reads streams."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import Any, TypeVar, Unpack

from PIL import Image

from easel.client import generation_calls as gen
from easel.client import image_calls as img
from easel.client import options as opt
from easel.client import system_calls as system
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
from easel.client.sync_io import SyncBase
from easel.client.waiting import JobWatch, ProgressCallback
from easel.core.events import GenerationEvent, JobEvent

T = TypeVar("T")


class Client(SyncBase):
    """A blocking client of an easel server's public API.

    `Client("http://gpu-box:8000", api_key="...")`; use it as a context manager or
    `close()` it. `timeout` (seconds or an `httpx.Timeout`) bounds each request; 429 and
    503 answers are retried up to `retries` times after their `Retry-After` (at most
    `max_retry_wait` seconds). Errors raise `easel.client.ApiError` (or a subclass) with
    the server's code, message, details and request id; a server that cannot be reached
    raises `ConnectionFailed`. Pass `transport` or a ready `httpx_client` in tests.
    """

    # ---- generation ---------------------------------------------------------------------
    def generate(
        self, prompt: str | None = None, **fields: Unpack[opt.GenerationFields]
    ) -> GenerationOutput:
        """Generate (or, with `image` and `mask`, edit or inpaint) and wait for the images.
        Any field of the server's generation request passes as a keyword; with
        `output="url"` the images come as links, fetched through this client on first use."""
        return self.output(self._call(gen.generate(prompt, fields)).raw)

    def stream(
        self, prompt: str | None = None, **fields: Unpack[opt.GenerationFields]
    ) -> Iterator[GenerationEvent]:
        """Generate, yielding the server's events as they come: `Queued`, `Started`,
        `Progress` (with a preview every `preview_every` steps), then `Succeeded` (its
        `result` is `generate`'s JSON: `output(result)` reads it), `Failed` or
        `Cancelled`. Closing the iterator early cancels the generation."""
        call = Call("POST", gen.STREAM, identity, gen.stream_body(prompt, fields))
        with closing(self._events(call)) as stream:
            for sse in stream:
                if (event := generation_event(sse)) is not None:
                    yield event

    def output(self, result: dict[str, Any]) -> GenerationOutput:
        """A generation result's JSON (a stream's `Succeeded.result`) as `generate`
        returns it: image links (`output="url"`) are fetched through this client."""
        return GenerationOutput(result, fetch=self.fetch_image)

    def fetch_image(self, url: str) -> bytes:
        """The bytes of an image link of this server (a result's `url`), with the key."""
        return self._bytes(gen.image(url, self.base_url))

    def styles(self) -> list[str]:
        """The style presets `style` may name."""
        return self._call(system.styles())

    def models(self) -> dict[str, Any]:
        """The model catalogue: `{engine, default_model, models: [{name, family, ...}]}`."""
        return self._call(system.models())

    def load_model(self, name: str) -> dict[str, Any]:
        """Load model `name` on the server and wait for it; its `models()` entry, with
        what was done in `message`. Other idle models may be unloaded to make room (the
        server's memory budget); a 503 (every other model busy, or the load failed) is
        retried as any is. Needs an `admin` key when the server has keys on."""
        return self._call(system.load_model(name))

    def unload_model(self, name: str) -> dict[str, Any]:
        """Unload model `name`, freeing its memory; `Conflict` (409) while it is busy.
        Unloading a model that is not loaded succeeds and says so in `message`."""
        return self._call(system.unload_model(name))

    def workflows(self) -> dict[str, Any]:
        """The ComfyUI workflows and their parameters (empty with the diffusers engine)."""
        return self._call(system.workflows())

    def health(self, *, deep: bool = False) -> dict[str, Any]:
        """Every service's health; `deep` wakes and asks each one (never otherwise)."""
        return self._call(system.health(deep=deep))

    # ---- jobs ---------------------------------------------------------------------------
    def submit(self, prompt: str | None = None, **fields: Unpack[opt.JobFields]) -> str:
        """Queue a generation as a job; returns its task id at once."""
        return self._call(gen.submit(prompt, fields))

    def status(self, task_id: str) -> JobInfo:
        """The job's status, progress, queue position and ETA."""
        return self._call(gen.status(task_id))

    def result(self, task_id: str) -> GenerationOutput:
        """A done job's images; `Conflict` (409) while it is not done, `JobFailed`-like
        details for a failed one, `NotFound` once expired."""
        return self.output(self._call(gen.result(task_id)).raw)

    def cancel(self, task_id: str) -> JobInfo:
        """Cancel a queued or running job (idempotent); its status after."""
        return self._call(gen.cancel(task_id))

    def jobs(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JobPage:
        """This key's jobs, newest first, optionally of one `status`."""
        return self._call(gen.jobs(status=status, limit=limit, cursor=cursor))

    def events(self, task_id: str, *, after: int = 0) -> Iterator[JobEvent]:
        """The job's log as typed events, from event id `after` on, live until its end."""
        headers = {"Last-Event-ID": str(after)} if after else {}
        call = Call("GET", gen.events_path(task_id), identity, headers=headers)
        with closing(self._events(call)) as stream:
            for sse in stream:
                if (event := job_event(sse)) is not None:
                    yield event

    def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationOutput:
        """Wait for the job's end and return its images. Follows the job's event stream
        (calling `on_progress` with each event), and its status if the stream drops.
        Raises `JobFailed`, `JobCancelled`, or `WaitTimeout` after `timeout` seconds."""
        watch = JobWatch(task_id, timeout=timeout, on_progress=on_progress)
        while True:
            try:
                if (output := self._follow(watch)) is not None:
                    return self.output(output.raw)
            except NetworkError:
                pass  # the stream dropped: the status says whether the job is still going
            if watch.see_status(self.status(task_id)):
                return self.result(task_id)
            time.sleep(watch.next_delay())

    # ---- images -------------------------------------------------------------------------
    def prepare(self, image: ImageInput) -> PreparedImage:
        """Upload `image` once for many clicks: pass the answer to `smart_mask`."""
        return self._call(img.prepare(image))

    def smart_mask(
        self,
        image: ImageInput | PreparedImage,
        points: Sequence[img.Point] = (),
        labels: Sequence[int] | None = None,
        box: img.Box | None = None,
        **options: Unpack[opt.SmartMaskOptions],
    ) -> MaskOutput:
        """A mask of the object at the `points` (`labels`: 1 selects, 0 excludes) and/or
        inside `box` (`x1, y1, x2, y2`), on `image` or on one `prepare` answered."""
        return self._call(img.smart_mask(image, points, labels, box, options))

    def resize(self, image: ImageInput, **options: Unpack[opt.ResizeOptions]) -> Image.Image:
        """Resize by `scale`, or to `width`/`height` with `fit`."""
        return self._call(img.resize(image, options))

    def crop(
        self,
        image: ImageInput,
        x: int,
        y: int,
        width: int,
        height: int,
        **options: Unpack[opt.Encoding],
    ) -> Image.Image:
        """Keep the box at (`x`, `y`) of `width` x `height`; it must lie inside the image."""
        box = {"x": x, "y": y, "width": width, "height": height}
        return self._call(img.crop(image, {**box, **options}))

    def convert(
        self, image: ImageInput, output_format: str, quality: int | None = None
    ) -> Image.Image:
        """Re-encode as png, jpeg or webp (at `quality`)."""
        return self._call(img.convert(image, {"output_format": output_format, "quality": quality}))

    def extract_object(
        self, image: ImageInput, mask: ImageInput, **options: Unpack[opt.ExtractOptions]
    ) -> Image.Image:
        """The image with `mask` as its alpha channel, optionally cropped to it."""
        return self._call(img.extract_object(image, mask, options))

    def diff(self, image_a: ImageInput, image_b: ImageInput) -> DiffOutput:
        """How two same-size images differ: mean absolute error and a heat-map."""
        return self._call(img.diff(image_a, image_b))

    def canny(self, image: ImageInput, **options: Unpack[opt.CannyOptions]) -> Image.Image:
        """The Canny edge map of the image, white on black."""
        return self._call(img.canny(image, options))

    def refine_mask(self, mask: ImageInput, **options: Unpack[opt.MaskOptions]) -> Image.Image:
        """Threshold, fill holes, dilate, erode, feather and invert a mask, in that order."""
        return self._call(img.refine_mask(mask, options))

    def _follow(self, watch: JobWatch) -> GenerationOutput | None:
        call = Call("GET", gen.events_path(watch.task_id), identity, headers=watch.resume_headers())
        with closing(self._events(call, read_timeout=watch.remaining())) as stream:
            for sse in stream:
                if (output := watch.see(sse)) is not None:
                    return output
        return None
