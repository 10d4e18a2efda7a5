"""Result images: stored once by content, safe to write at once, shared across jobs."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from easel.core.image_store import ImageStore


def test_the_same_image_saved_at_once_by_many_writers_is_stored_once(tmp_path) -> None:
    # Found by benchmarks/jobs.py: writers of one process shared a partial file's name.
    files = ImageStore(tmp_path)
    writers = 8
    start_together = threading.Barrier(writers)

    def save(data: bytes) -> str:
        start_together.wait()
        return files.save(data)

    with ThreadPoolExecutor(writers) as pool:
        for _ in range(20):  # a new image each round, so every round races on a first save
            data = os.urandom(256 * 1024)
            (digest,) = set(pool.map(save, [data] * writers))
            assert files.load(digest) == data
    assert not [p for p in tmp_path.rglob("*.partial")]


def test_an_image_another_job_saved_since_survives_the_sweep_of_an_old_job(tmp_path) -> None:
    files = ImageStore(tmp_path)
    old = files.save(b"shared")
    os.utime(files._path(old), (1_000, 1_000))  # saved long ago by an old job
    cutoff = time.time() - 60
    assert files.save(b"shared") == old  # a new job made the same image
    files.delete_unused(old, since=cutoff)
    assert files.load(old) == b"shared"
    os.utime(files._path(old), (1_000, 1_000))  # and now no job has used it since
    files.delete_unused(old, since=cutoff)
    assert files.load(old) is None
    files.delete_unused(old, since=cutoff)  # gone already: nothing to do
