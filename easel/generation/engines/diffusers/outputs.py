"""A pipeline call's images back per request: the call's batch is flat, in item order."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from easel.generation.engines.base import EngineItem
from easel.generation.engines.diffusers.calls import first_images
from easel.generation.engines.encoded import OutputImage


def per_item(flat: Sequence[Image.Image], items: list[EngineItem]) -> list[list[OutputImage]]:
    """`num_images` images for each item, in the order the items were given."""
    return [
        list(flat[start : start + item.num_images])
        for start, item in zip(first_images(items), items, strict=True)
    ]
