"""Files in and out of the client commands: images read from paths, results written to
`-o` (numbered when there are several), and the format that `-o`'s suffix implies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from easel.cli.client.failures import UsageProblem
from easel.cli.common import console
from easel.client import GenerationOutput
from easel.core.images import OutputFormat

_SUFFIXES = {".png": OutputFormat.PNG, ".jpg": OutputFormat.JPEG, ".jpeg": OutputFormat.JPEG,
             ".webp": OutputFormat.WEBP}  # fmt: skip


def read_image(path: Path) -> bytes:
    """The file's bytes (the server decodes and checks them)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from None


def format_for(output: Path, chosen: OutputFormat | None) -> OutputFormat:
    """`--format` when given, else what `-o`'s suffix says (out.jpg: jpeg), else png."""
    if chosen is not None:
        return chosen
    return _SUFFIXES.get(output.suffix.lower(), OutputFormat.PNG)


def numbered(output: Path, count: int) -> list[Path]:
    """out.png for one image; out.png, out-1.png, out-2.png... for several."""
    return [output if i == 0 else output.with_stem(f"{output.stem}-{i}") for i in range(count)]


def _store(path: Path, write: Callable[[Path], object]) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise UsageProblem(f"cannot write {path}: {exc.strerror or exc}") from None
    console.print(str(path), highlight=False, soft_wrap=True)  # stdout: one path a line
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write an encoded image as it is and print its path."""
    return _store(path, lambda target: target.write_bytes(data))


def write_images(output: Path, images: Sequence[bytes]) -> list[Path]:
    """Write each encoded image (numbered after the first) and print its path."""
    return [
        write_bytes(path, data)
        for path, data in zip(numbered(output, len(images)), images, strict=True)
    ]


def save_image(output: Path, image: Image.Image, fmt: OutputFormat, quality: int | None) -> Path:
    """Encode a decoded image as `fmt` into `output` and print its path."""
    if fmt is OutputFormat.JPEG and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    options = {} if quality is None else {"quality": quality}
    return _store(output, lambda target: image.save(target, format=fmt.value.upper(), **options))


def write_result(output: Path, result: GenerationOutput) -> list[Path]:
    """A generation's images, each as the server encoded it, then one line about it."""
    count = len(result.raw["images"])
    paths = write_images(output, [result.image_bytes(i) for i in range(count)])
    raw = result.raw
    took = result.timings.get("total_ms")
    console.print(
        f"{count} image{'s' * (count != 1)} {raw.get('width')}x{raw.get('height')}, "
        f"seed {result.seed}, {raw.get('steps')} steps, model {raw.get('model')}"
        + ("" if took is None else f", {took / 1000:.1f}s"),
        highlight=False,
    )
    return paths
