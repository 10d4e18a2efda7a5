"""easel's Python SDK: `Client` (blocking) and `AsyncClient` (asyncio) over httpx.

    from easel.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as easel:
        out = easel.generate("a lighthouse at dusk", steps=20, seed=42)
        out.image.save("lighthouse.png")           # PIL; out.image_bytes() as sent
        for event in easel.stream("a fox", steps=20):
            print(event.type, getattr(event, "step", ""))
        task = easel.submit("a fox", steps=30)
        done = easel.wait(task, on_progress=print)
        mask = easel.smart_mask("photo.png", points=[(120, 80)]).mask
        edited = easel.generate("a red door", image="photo.png", mask=mask)

Images go in as paths, bytes or PIL images, and come out as PIL images (bytes on
request). Every error answer raises an `ApiError` subclass carrying the server's code,
message, details and request id; 429 and 503 are retried after their Retry-After.
Needs no torch: only httpx, httpx-sse, tenacity, pydantic and Pillow.
"""

from easel.client.async_client import AsyncClient
from easel.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    NetworkError,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from easel.client.images import ImageInput
from easel.client.results import (
    DiffOutput,
    GenerationOutput,
    JobInfo,
    JobPage,
    MaskOutput,
    PreparedImage,
)
from easel.client.sync_client import Client
from easel.client.waiting import ProgressCallback

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "DiffOutput",
    "GenerationOutput",
    "ImageInput",
    "InvalidRequest",
    "JobCancelled",
    "JobFailed",
    "JobInfo",
    "JobPage",
    "MaskOutput",
    "PreparedImage",
    "NetworkError",
    "NotFound",
    "ProgressCallback",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
]
