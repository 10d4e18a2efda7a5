"""The image store's own rules: the format read back from the bytes, names that are no
digest, and the sweep by age that removes images no job records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from easel.core.image_store import ImageStore, format_of
from easel.core.images import OutputFormat
from tests.support.images import encode


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_an_image_is_read_back_with_its_format(tmp_path: Path, fmt: OutputFormat) -> None:
    store = ImageStore(tmp_path)
    data = encode(Image.new("RGB", (8, 8), "teal"), fmt.value.upper())
    stored = store.read(store.save(data))
    assert stored is not None and stored.data == data and stored.format is fmt


def test_other_bytes_and_other_names(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    assert format_of(b"GIF89a...") is None
    assert store.read(store.save(b"not an image")).format is None  # type: ignore[union-attr]
    for name in ("0" * 63, "../" + "0" * 61, "A" * 64):
        assert store.read(name) is None
    assert store.read("0" * 64) is None


def test_the_sweep_removes_what_was_last_saved_before_the_cutoff(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    old, kept = store.save(b"old"), store.save(b"kept")
    os.utime(store._path(old), (1_000, 1_000))
    assert store.sweep(older_than=2_000) == 1
    assert store.load(old) is None and store.load(kept) == b"kept"
