"""Encoded images stored once by content (sha256) in one folder (EASEL_IMAGES_DIR).

Job workers save their results here, the generation service saves the images of a
synchronous `output: "url"` request, and the job manager serves them all
(`GET /api/images/{sha256}.{ext}`). The bytes are kept as encoded (PNG, JPEG or WebP) and
carry their own format, read back from their first bytes: a file needs no side record,
and a folder written before links existed serves as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from easel.core.images import OutputFormat

_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    """A sha256 hex digest, lower-case, as the store names its files."""
    return _DIGEST.fullmatch(text) is not None


def format_of(data: bytes) -> OutputFormat | None:
    """The format of encoded image bytes, from their signature; None for any other."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return OutputFormat.PNG
    if data.startswith(b"\xff\xd8\xff"):
        return OutputFormat.JPEG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return OutputFormat.WEBP
    return None


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    format: OutputFormat | None


class ImageStore:
    """The folder of stored images, each at `<root>/<sha[:2]>/<sha>`. Safe to use from
    several threads and processes at once (the same image too)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if not is_digest(digest):
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
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        return None

    def has(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def read(self, digest: str) -> StoredImage | None:
        """The image and its format; None when `digest` is not stored (or not a digest)."""
        if not is_digest(digest):
            return None
        data = self.load(digest)
        return None if data is None else StoredImage(data, format_of(data))

    def delete_unused(self, digest: str, *, since: float) -> None:
        """Delete the image unless a job saved it at or after `since` (epoch seconds):
        identical outputs of several jobs share one file."""
        path = self._path(digest)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < since:
                path.unlink()

    def sweep(self, *, older_than: float) -> int:
        """Delete every image last saved before `older_than` (epoch seconds), those of
        synchronous requests that no job records included; how many went."""
        removed = 0
        for path in self.root.glob("??/*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
        return removed

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
