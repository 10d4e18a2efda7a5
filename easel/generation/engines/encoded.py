"""An output image an engine received already encoded (ComfyUI's PNG files), kept as bytes.

A response in that format carries the bytes as they are: no decode, no re-encode (at
1024x1024 those cost tens of milliseconds of CPU per image). Any other format decodes
them first. Engines that produce pixels (diffusers) return Pillow images instead; the
service takes either (`OutputImage`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from easel.core.errors import BadGateway
from easel.core.images import CORRUPT_IMAGE_ERRORS, OutputFormat


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: OutputFormat
    width: int  # from the file's header, checked against the pixel limit by its producer
    height: int

    def decode(self) -> Image.Image:
        """The pixels, for a response in another format (Pillow's pixel limit applies)."""
        try:
            image = Image.open(io.BytesIO(self.data))
            image.load()
        except CORRUPT_IMAGE_ERRORS as exc:
            raise BadGateway(f"an output image of the engine is corrupt ({exc})") from exc
        return image


OutputImage = Image.Image | EncodedImage
