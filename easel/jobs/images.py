"""Serving stored images (`GET /api/images/{sha256}.{ext}`): the results of `output: "url"`
requests, synchronous or async, from the store every producer writes to.

An image's name is its content's digest, so what a name answers never changes: it is
cached for a year, its ETag is the digest and a revalidation is a 304. Who may fetch it is
the gateway's to decide (a key, or a signed link: `easel.core.image_links`).
"""

from __future__ import annotations

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from easel.core.errors import NotFound
from easel.core.image_links import image_path
from easel.core.image_store import ImageStore, is_digest

# `private`: with API keys on, a shared cache must not hand an image to whoever asks.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def _etag(digest: str) -> str:
    return f'"{digest}"'


def _matches(if_none_match: str | None, digest: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or _etag(digest) in tags


async def image_response(
    store: ImageStore, digest: str, ext: str, *, if_none_match: str | None = None
) -> Response:
    """The stored image `digest` if it is one of format `ext`; NotFound otherwise (also
    for a name that is no digest, or an extension the image does not have)."""
    if not is_digest(digest):
        raise NotFound(
            "an image is named by the sha256 of its bytes: 64 lower-case hex digits",
            details={"field": "sha256"},
        )
    headers = {"ETag": _etag(digest), "Cache-Control": CACHE_CONTROL}
    if _matches(if_none_match, digest) and store.has(digest):
        return Response(status_code=304, headers=headers)
    stored = await run_in_threadpool(store.read, digest)
    if stored is None:
        raise NotFound(f"no image {digest} is stored (or it was removed after its retention)")
    if stored.format is None:
        raise NotFound(f"what is stored as {digest} is not a png, jpeg or webp image")
    if stored.format.value != ext:
        raise NotFound(
            f"image {digest} is a {stored.format.value}, not {ext}: "
            f"{image_path(digest, stored.format)}",
            details={"field": "ext"},
        )
    return Response(stored.data, media_type=stored.format.media_type, headers=headers)
