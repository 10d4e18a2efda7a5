"""ComfyUI's PNG outputs passed on as they are, but for their metadata.

Only the chunk structure is read (lengths and types, never the pixels): the size comes
from IHDR and is held to the pixel limit decoding would apply (Pillow's decompression-bomb
limit), and the chunks a viewer needs are kept. ComfyUI's SaveImage writes the whole
prompt graph and workflow into text chunks; those are dropped, as re-encoding did, so
a response never shows a workflow's internals (model files, upload names). A file that is
not a well-formed PNG is left to the decoder, which says what is wrong with it.
"""

from __future__ import annotations

import struct

from PIL import Image

from easel.core.errors import BadGateway
from easel.core.images import OutputFormat
from easel.generation.engines.encoded import EncodedImage

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The image as saved: its header, palette, transparency, colour space, pixel density and
# data. Dropped: tEXt, zTXt, iTXt (ComfyUI's prompt and workflow), tIME, eXIf, APNG frames
# after the default image, private chunks.
KEPT = frozenset(
    {b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs", b"IDAT"}
)
_CHUNK = struct.Struct(">I4s")  # length, type; then the data and a 4-byte CRC


def passed_png(data: bytes, name: str) -> EncodedImage | None:
    """`data` as a PNG to pass on, less its metadata; None if it is no well-formed PNG."""
    chunks = _chunks(data)
    if chunks is None:
        return None
    first = chunks[0]
    width, height = struct.unpack_from(">II", data, first[0] + 8)
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > 2 * limit:  # where Pillow refuses to decode
        raise BadGateway(
            f"ComfyUI's output {name} is {width}x{height} pixels, over the decoding limit "
            f"of {2 * limit}"
        )
    kept = [(start, end) for start, end, kind in chunks if kind in KEPT or kind == b"IEND"]
    if len(kept) == len(chunks) and chunks[-1][1] == len(data):
        passed = data  # nothing to drop: no copy
    else:
        view = memoryview(data)
        passed = b"".join([SIGNATURE, *(view[start:end] for start, end in kept)])
    return EncodedImage(passed, OutputFormat.PNG, width, height)


def _chunks(data: bytes) -> list[tuple[int, int, bytes]] | None:
    """(start, end, type) of each chunk up to IEND; None unless IHDR, IDAT, IEND are there
    in order and every chunk fits."""
    if not data.startswith(SIGNATURE):
        return None
    chunks, offset, size = [], len(SIGNATURE), len(data)
    while offset + 12 <= size:
        length, kind = _CHUNK.unpack_from(data, offset)
        end = offset + 12 + length
        if end > size:
            return None
        chunks.append((offset, end, kind))
        offset = end
        if kind == b"IEND":
            break
    kinds = [kind for _, _, kind in chunks]
    well_formed = (
        bool(kinds)
        and kinds[0] == b"IHDR"
        and chunks[0][1] - chunks[0][0] == 25  # 13 bytes of header data
        and kinds[-1] == b"IEND"
        and b"IDAT" in kinds
    )
    return chunks if well_formed else None
