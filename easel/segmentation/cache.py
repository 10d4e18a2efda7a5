"""Prepared images by a hash of the image as sent: re-clicking on the same image (the usual
editing loop) skips decoding and the segmenter's per-image work."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from easel.segmentation.segmenters.base import Prepared


def image_key(data: str | bytes) -> str:
    raw = data.strip().encode() if isinstance(data, str) else data
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class PreparedCache:
    """A least-recently-used map, safe across the threads requests run in. Size 0: off."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, Prepared] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Prepared | None:
        with self._lock:
            prepared = self._items.get(key)
            if prepared is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return prepared

    def put(self, key: str, prepared: Prepared) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[key] = prepared
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._items),
                "capacity": self.capacity,
                "hits": self.hits,
                "misses": self.misses,
            }
