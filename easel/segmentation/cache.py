"""Prepared images by a hash of the image as sent: re-clicking on the same image (the usual
editing loop) skips decoding and the segmenter's per-image work. The hash is also the
`image_id` that `POST /api/smart-mask/prepare` answers, so a front end can upload an image
once and then send only clicks; an entry lives `ttl` seconds after its last use."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from easel.segmentation.segmenters.base import Prepared


def image_key(data: str | bytes) -> str:
    """The hash of the image's bytes, however they came (base64, a data URL, a file), so
    an image prepared from an upload is found by a click that sends it as base64."""
    raw = data if isinstance(data, bytes) else _decoded(data)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _decoded(text: str) -> bytes:
    text = text.strip()
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return text.encode()  # not base64: the codec says so when it decodes


class PreparedCache:
    """A least-recently-used map, safe across the threads requests run in, whose entries
    expire `ttl` seconds after their last use. Capacity 0: off."""

    def __init__(
        self, capacity: int, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self.hits = 0
        self.misses = 0
        self.expired = 0
        self._clock = clock
        self._items: OrderedDict[str, tuple[Prepared, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Prepared | None:
        now = self._clock()
        with self._lock:
            entry = self._items.get(key)
            if entry is not None and entry[1] <= now:
                del self._items[key]
                self.expired += 1
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._items[key] = (entry[0], now + self.ttl)  # a use keeps it alive
            self._items.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, prepared: Prepared) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[key] = (prepared, self._clock() + self.ttl)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def stats(self) -> dict[str, int | float]:
        with self._lock:
            return {
                "entries": len(self._items),
                "capacity": self.capacity,
                "ttl_s": self.ttl,
                "hits": self.hits,
                "misses": self.misses,
                "expired": self.expired,
            }
