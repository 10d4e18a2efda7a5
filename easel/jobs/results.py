"""Result images, stored once by content (sha256) under the data dir."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path


class ResultFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("not a sha256 digest")
        return self.root / digest[:2] / digest

    def save(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        try:
            # Stored already (another job made the same image): mark it used now, so the
            # sweep of an older job that shares it leaves it alone (`delete_unused`).
            os.utime(path)
            return digest
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per writer: two jobs saving the same image at once (threads of
        # one process, or processes) must not share a partial file.
        partial = path.with_name(f"{digest}.{uuid.uuid4().hex}.partial")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: readers never see half a file
        return digest

    def load(self, digest: str) -> bytes | None:
        path = self._path(digest)
        return path.read_bytes() if path.exists() else None

    def delete_unused(self, digest: str, *, since: float) -> None:
        """Delete the image unless a job saved it at or after `since` (epoch seconds):
        identical outputs of several jobs share one file."""
        path = self._path(digest)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < since:
                path.unlink()

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
