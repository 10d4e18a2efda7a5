"""What the SDK's calls return: thin views over the server's JSON (kept whole in `raw`),
with the images decoded to PIL on first use."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from PIL import Image

from easel.client.images import decode_bytes, decode_image, open_image

ImageFetch = Callable[[str], bytes]
"""Fetches an image's `url` (the client's own session, with its key): `Client.fetch_image`."""

TERMINAL_STATUSES = frozenset({"done", "failed", "cancelled", "expired"})


@dataclass(frozen=True)
class GenerationOutput:
    """The answer of `generate`, or a done job's `result`: the images, the seed of the
    first (image i used `seed + i`), the timings in milliseconds, and the whole JSON.

    Images come inline (`output: "base64"`) or as links (`output: "url"`); a link is
    fetched with `fetch` on first use, once, and checked against its `sha256`."""

    raw: dict[str, Any] = field(repr=False)
    fetch: ImageFetch | None = field(default=None, repr=False, compare=False)
    _fetched: dict[int, bytes] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def images(self) -> list[Image.Image]:
        """Every image, decoded."""
        return [open_image(self.image_bytes(i)) for i in range(len(self.raw["images"]))]

    @property
    def image(self) -> Image.Image:
        """The first image."""
        return self.images[0]

    @property
    def seed(self) -> int:
        return int(self.raw["seed"])

    @property
    def timings(self) -> dict[str, float]:
        """queue_wait_ms, inference_ms, encode_ms and total_ms."""
        return dict(self.raw.get("timings") or {})

    @property
    def task_id(self) -> str | None:
        """The job's id, for a job's result."""
        return self.raw.get("task_id")

    def urls(self) -> list[str | None]:
        """Each image's link (None for an image that came inline)."""
        return [item.get("url") for item in self.raw["images"]]

    def image_bytes(self, index: int = 0) -> bytes:
        """Image `index` as the server encoded it (its `output_format`)."""
        item = self.raw["images"][index]
        if item.get("image") is not None:
            return decode_bytes(item["image"])
        if index not in self._fetched:
            self._fetched[index] = self._download(item)
        return self._fetched[index]

    def _download(self, item: dict[str, Any]) -> bytes:
        url = item.get("url")
        if not url:
            raise ValueError("the image carries neither `image` nor `url`")
        if self.fetch is None:
            raise ValueError(f"the image is a link ({url}): fetch it with Client.fetch_image")
        data = self.fetch(str(url))
        digest = item.get("sha256")
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"the image fetched from {url} is not the one of sha256 {digest}")
        return data

    def save(self, path: str | Path, index: int = 0) -> Path:
        """Write image `index`'s bytes, as encoded by the server, to `path`."""
        target = Path(path)
        target.write_bytes(self.image_bytes(index))
        return target


@dataclass(frozen=True)
class PreparedImage:
    """An image uploaded once (`prepare`): pass it to `smart_mask` in place of the image,
    and only the clicks travel. It expires `expires_in` seconds after its last use."""

    image_id: str
    width: int
    height: int
    expires_in: float


@dataclass(frozen=True)
class MaskOutput:
    """The answer of `smart_mask`: the mask (PIL, mode L, the image's size; 255 selects),
    its bounding box `[x1, y1, x2, y2]` (None when empty), area, score and the model."""

    raw: dict[str, Any] = field(repr=False)

    @cached_property
    def mask(self) -> Image.Image:
        return decode_image(self.raw["mask"]).convert("L")

    @property
    def bbox(self) -> list[int] | None:
        return self.raw.get("bbox")

    @property
    def area(self) -> int:
        return int(self.raw["area"])

    @property
    def score(self) -> float:
        return float(self.raw["score"])

    @property
    def model(self) -> str:
        return str(self.raw["model"])

    def mask_bytes(self) -> bytes:
        """The mask as the PNG the server sent."""
        return decode_bytes(self.raw["mask"])


@dataclass(frozen=True)
class DiffOutput:
    """The answer of `diff`: mean absolute error (0-255 and 0-1), the largest channel
    difference, the share of changed pixels and the heat-map."""

    raw: dict[str, Any] = field(repr=False)

    @property
    def mae(self) -> float:
        return float(self.raw["mae"])

    @property
    def mae_normalized(self) -> float:
        return float(self.raw["mae_normalized"])

    @property
    def max_error(self) -> int:
        return int(self.raw["max_error"])

    @property
    def changed_fraction(self) -> float:
        return float(self.raw["changed_fraction"])

    @cached_property
    def heatmap(self) -> Image.Image:
        return decode_image(self.raw["heatmap"]["image"])


@dataclass(frozen=True)
class JobInfo:
    """A job's status: `status` (queued, running, done, failed, cancelled), progress
    `step` of `total`, `queue_position`, `eta_s`, `error` and the whole JSON."""

    raw: dict[str, Any] = field(repr=False)

    @property
    def task_id(self) -> str:
        return str(self.raw["task_id"])

    @property
    def status(self) -> str:
        return str(self.raw["status"])

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def step(self) -> int:
        return int((self.raw.get("progress") or {}).get("step") or 0)

    @property
    def total(self) -> int:
        return int((self.raw.get("progress") or {}).get("total") or 0)

    @property
    def queue_position(self) -> int | None:
        return self.raw.get("queue_position")

    @property
    def eta_s(self) -> float | None:
        return self.raw.get("eta_s")

    @property
    def error(self) -> dict[str, Any] | None:
        return self.raw.get("error")


@dataclass(frozen=True)
class JobPage:
    """One page of `jobs()`: newest first; pass `next_cursor` on for the next page."""

    jobs: list[JobInfo]
    next_cursor: str | None
