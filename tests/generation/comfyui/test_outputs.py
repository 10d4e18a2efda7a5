"""ComfyUI's PNG outputs go on as ComfyUI wrote them (their pixel data never decoded nor
re-encoded), less the metadata chunks where SaveImage puts the prompt graph; another
output format decodes them; the decoding limit on pixels still holds."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from easel.generation.engines.comfyui.pngs import SIGNATURE, passed_png
from tests.generation.comfyui.helpers import T2I, service
from tests.support.fake_comfyui import FakeComfyUI


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a PNG."""
    found, offset = [], len(SIGNATURE)
    while offset < len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        found.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return found


def output_file(fake: FakeComfyUI) -> bytes:
    """The file ComfyUI saved for the last prompt."""
    (node,) = fake.entry(fake.prompts[-1]["prompt_id"])["outputs"].values()
    (file,) = node["images"]
    return fake.files[("output", file["subfolder"], file["filename"])]


async def test_a_png_output_is_comfyuis_file_less_its_metadata(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake, tmp_path, max_queued=1) as api:
        answer = await api.post("/api/generate", json={**T2I, "steps": 2})
    assert answer.status_code == 200, answer.text
    (image,) = answer.json()["images"]
    sent, saved = base64.b64decode(image["image"]), output_file(fake)
    assert b"tEXt" in [kind for kind, _ in chunks(saved)]  # the prompt graph, as ComfyUI
    assert chunks(sent) == [(kind, data) for kind, data in chunks(saved) if kind != b"tEXt"]
    decoded = Image.open(io.BytesIO(sent))
    assert "prompt" not in decoded.info
    assert (image["width"], image["height"]) == decoded.size == (64, 64)
    assert decoded.tobytes() == Image.open(io.BytesIO(saved)).tobytes()


async def test_another_format_decodes_comfyuis_png(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with service(fake, tmp_path, max_queued=1) as api:
        body = {**T2I, "steps": 2, "output_format": "jpeg"}
        answer = await api.post("/api/generate", json=body)
    assert answer.status_code == 200, answer.text
    (image,) = answer.json()["images"]
    decoded = Image.open(io.BytesIO(base64.b64decode(image["image"])))
    assert decoded.format == "JPEG" and decoded.size == (64, 64)


async def test_an_output_over_the_decoding_limit_is_refused(
    fake: FakeComfyUI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is over twice that
    async with service(fake, tmp_path, max_queued=1) as api:
        answer = await api.post("/api/generate", json={**T2I, "steps": 2})
    assert answer.status_code == 502, answer.text
    assert "64x64 pixels, over the decoding limit" in answer.json()["error"]["message"]


def png(*extra: tuple[bytes, bytes]) -> bytes:
    """A 1x1 grey PNG with `extra` chunks before its data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    body = [chunk(b"IHDR", header), *(chunk(k, d) for k, d in extra)]
    body += [chunk(b"IDAT", zlib.compress(b"\x00\x80")), chunk(b"IEND", b"")]
    return SIGNATURE + b"".join(body)


def test_a_png_without_metadata_passes_as_it_is() -> None:
    data = png((b"gAMA", struct.pack(">I", 45455)))
    passed = passed_png(data, "x.png")
    assert passed is not None and passed.data is data  # not even copied
    assert (passed.width, passed.height) == (1, 1)


def test_text_time_and_private_chunks_are_dropped() -> None:
    data = png((b"tEXt", b"prompt\x00{}"), (b"tIME", bytes(7)), (b"prVt", b"x"))
    passed = passed_png(data, "x.png")
    assert passed is not None and passed.data == png()
    assert Image.open(io.BytesIO(passed.data)).getpixel((0, 0)) == 128


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a...",  # not a PNG: decoded (and refused) as before
        png()[:-20],  # cut short
        SIGNATURE + png()[33:],  # no IHDR first
    ],
)
def test_what_is_not_a_well_formed_png_is_left_to_the_decoder(data: bytes) -> None:
    assert passed_png(data, "x.png") is None
