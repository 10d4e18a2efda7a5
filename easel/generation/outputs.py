"""How a generated image leaves the service: inline base64 (`output: "base64"`), or stored
once by content and linked (`output: "url"`).

With `url` the encoded bytes go to the image store the job manager serves
(`GET /api/images/{sha256}.{ext}`, EASEL_IMAGES_DIR): the same folder on one machine (the
all-in-one process, a pod share the data dir), a shared volume across machines. The link
is signed here whenever a link secret is configured; the gateway checks it when API keys
are on (`easel.core.image_links`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TypeGuard

from easel.core.generation_api import GeneratedImage, OutputKind
from easel.core.image_links import ImageLinks
from easel.core.image_store import ImageStore
from easel.core.images import ImageCodec, OutputFormat
from easel.generation.engines.encoded import EncodedImage, OutputImage


def passes(image: OutputImage, fmt: OutputFormat) -> TypeGuard[EncodedImage]:
    """Whether the image goes out as the engine encoded it (no pixel work at all)."""
    return isinstance(image, EncodedImage) and image.format is fmt


@dataclass(frozen=True)
class ImageOutputs:
    codec: ImageCodec
    store: ImageStore
    links: ImageLinks

    def generated(
        self,
        image: OutputImage,
        *,
        output: OutputKind,
        fmt: OutputFormat,
        quality: int | None,
        seed: int,
    ) -> GeneratedImage:
        """One image of a result, encoded as `fmt`, carried as `output` asks."""
        if passes(image, fmt):
            data = image.data
        else:
            pixels = image.decode() if isinstance(image, EncodedImage) else image
            data = self.codec.encode(pixels, fmt, quality)
        carried: dict[str, str]
        if output is OutputKind.URL:
            digest = self.store.save(data)
            carried = {"url": self.links.link(digest, fmt), "sha256": digest}
        else:
            carried = {"image": base64.b64encode(data).decode("ascii")}
        return GeneratedImage(
            **carried,
            seed=seed,
            format=fmt,
            media_type=fmt.media_type,
            width=image.width,
            height=image.height,
        )
