"""`easel utils resize | crop | convert | extract-object | diff | canny | mask`: the
image-utils ops of a server, each option a field of its request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from PIL import Image

from easel.cli.client.connection import client_command
from easel.cli.client.files import format_for, read_image, save_image
from easel.cli.client.options import Format, InputImage, Output, Quality, given
from easel.cli.common import console
from easel.client import Client

utils_app = typer.Typer(
    help="Image operations on the server (its image-utils service).", no_args_is_help=True
)

Pixels = Annotated[int | None, typer.Option(min=1, help="Pixels.")]
Radius = Annotated[int, typer.Option(min=0, help="Radius in pixels.")]


def _encoded(output: Path, fmt: Format, quality: Quality) -> dict[str, Any]:
    """The op's encoding fields: the format -o implies unless --format, and --quality."""
    fields: dict[str, Any] = {"output_format": format_for(output, fmt).value}
    if quality is not None:
        fields["quality"] = quality
    return fields


def _save(output: Path, image: Image.Image, fmt: Format, quality: Quality) -> None:
    save_image(output, image, format_for(output, fmt), quality)


@client_command(utils_app, "resize")
def resize(
    client: Client,
    image: InputImage,
    output: Output = Path("resized.png"),
    scale: Annotated[float | None, typer.Option(min=0, help="Instead of --width/--height.")] = None,
    width: Pixels = None,
    height: Pixels = None,
    fit: Annotated[
        Literal["stretch", "contain", "cover"],
        typer.Option(
            help="stretch: exactly WxH; contain: inside, aspect kept; cover: fill, centre-crop."
        ),
    ] = "contain",
    resample: Annotated[
        Literal["nearest", "bilinear", "bicubic", "lanczos"], typer.Option()
    ] = "lanczos",
    fmt: Format = None,
    quality: Quality = None,
) -> None:
    """Resize by --scale, or to --width/--height with --fit."""
    fields = given({"width": width, "height": height, "scale": scale, "fit": fit,
                    "resample": resample})  # fmt: skip
    resized = client.resize(read_image(image), **fields, **_encoded(output, fmt, quality))
    _save(output, resized, fmt, quality)


@client_command(utils_app, "crop")
def crop(
    client: Client,
    image: InputImage,
    x: Annotated[int, typer.Option(min=0, help="Left edge.")],
    y: Annotated[int, typer.Option(min=0, help="Top edge.")],
    width: Annotated[int, typer.Option(min=1)],
    height: Annotated[int, typer.Option(min=1)],
    output: Output = Path("cropped.png"),
    fmt: Format = None,
    quality: Quality = None,
) -> None:
    """Keep the box at --x, --y of --width x --height (inside the image)."""
    cut = client.crop(read_image(image), x, y, width, height, **_encoded(output, fmt, quality))
    _save(output, cut, fmt, quality)


@client_command(utils_app, "convert")
def convert(
    client: Client,
    image: InputImage,
    output: Output = Path("converted.png"),
    fmt: Format = None,
    quality: Quality = None,
) -> None:
    """Re-encode as png, jpeg (alpha flattened onto white) or webp: -o's suffix or --format."""
    chosen = format_for(output, fmt)
    _save(output, client.convert(read_image(image), chosen.value, quality), fmt, quality)


@client_command(utils_app, "extract-object")
def extract_object(
    client: Client,
    image: InputImage,
    mask: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The mask: white selects.")
    ],
    output: Output = Path("object.png"),
    crop_to: Annotated[
        bool, typer.Option("--crop", help="Crop to the mask's bounding box.")
    ] = False,
    padding: Annotated[int, typer.Option(min=0, help="Pixels kept around the crop.")] = 0,
    fmt: Format = None,
    quality: Quality = None,
) -> None:
    """Cut out the object: the image with the mask as its alpha (png or webp)."""
    cut = client.extract_object(
        read_image(image), read_image(mask), crop=crop_to, padding=padding,
        **_encoded(output, fmt, quality),
    )  # fmt: skip
    _save(output, cut, fmt, quality)


@client_command(utils_app, "diff")
def diff(
    client: Client,
    image_a: InputImage,
    image_b: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Same size as IMAGE_A.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="Write the heat-map here.")
    ] = None,
) -> None:
    """Print how two same-size images differ (mean absolute error, 0-255); -o writes the
    heat-map of where."""
    found = client.diff(read_image(image_a), read_image(image_b))
    console.print(
        f"mae {found.mae:.4f} (normalized {found.mae_normalized:.6f}), max error "
        f"{found.max_error}, changed {found.changed_fraction:.2%} of pixels",
        highlight=False,
    )
    if output is not None:
        _save(output, found.heatmap, None, None)


@client_command(utils_app, "canny")
def canny(
    client: Client,
    image: InputImage,
    output: Output = Path("edges.png"),
    low: Annotated[float, typer.Option(min=0, max=1000, help="Low threshold.")] = 100.0,
    high: Annotated[float, typer.Option(min=0, max=1000, help="High threshold.")] = 200.0,
    aperture: Annotated[Literal[3, 5, 7], typer.Option(help="Sobel aperture: 3, 5 or 7.")] = 3,
    l2_gradient: Annotated[bool, typer.Option(help="The exact L2 gradient norm.")] = False,
    fmt: Format = None,
    quality: Quality = None,
) -> None:
    """The Canny edge map, white on black."""
    edges = client.canny(
        read_image(image), low_threshold=low, high_threshold=high, aperture_size=aperture,
        l2_gradient=l2_gradient, **_encoded(output, fmt, quality),
    )  # fmt: skip
    _save(output, edges, fmt, quality)


@client_command(utils_app, "mask")
def refine_mask(
    client: Client,
    mask: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A mask: white selects.")
    ],
    output: Output = Path("refined.png"),
    threshold: Annotated[int | None, typer.Option(min=0, max=255, help="Binarise first.")] = None,
    fill_holes: Annotated[bool, typer.Option(help="Fill enclosed holes.")] = False,
    dilate: Radius = 0,
    erode: Radius = 0,
    feather: Annotated[float, typer.Option(min=0, help="Blur sigma in pixels.")] = 0.0,
    invert: Annotated[bool, typer.Option(help="Swap selected and not.")] = False,
    fmt: Format = None,
    quality: Quality = None,
) -> None:
    """Refine a mask: threshold, fill holes, dilate, erode, feather, invert, in that order."""
    fields = {"threshold": threshold, "fill_holes": fill_holes, "dilate": dilate,
              "erode": erode, "feather": feather, "invert": invert}  # fmt: skip
    refined = client.refine_mask(
        read_image(mask), **given(fields), **_encoded(output, fmt, quality)
    )
    _save(output, refined, fmt, quality)
