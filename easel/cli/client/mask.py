"""`easel mask`: a smart mask of the object at clicked points and/or inside a box."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from easel.cli.client.failures import UsageProblem
from easel.cli.client.files import read_image, write_bytes
from easel.cli.client.options import InputImage, Output
from easel.cli.client.parsing import Box, Point, box, point
from easel.cli.common import console
from easel.client import Client


def _points(flag: str, what: str) -> Any:  # typer.Option is typed Any
    return typer.Option(flag, metavar="X,Y", parser=point, help=f"{what} (repeat for more).")


Positive = Annotated[list[Point] | None, _points("--point", "A point on the object, in pixels")]
Negative = Annotated[list[Point] | None, _points("--negative", "A point not on the object")]


def mask(
    client: Client,
    image: InputImage,
    points: Positive = None,
    negative: Negative = None,
    around: Annotated[
        Box | None,
        typer.Option("--box", metavar="X1,Y1,X2,Y2", parser=box, help="A box around the object."),
    ] = None,
    output: Output = Path("mask.png"),
) -> None:
    """Write the mask (a PNG, white selects) to -o and print its bounding box, area and
    score."""
    chosen, excluded = points or [], negative or []
    if not (chosen or excluded or around):
        raise UsageProblem("say where the object is: --point X,Y (repeat), or --box X1,Y1,X2,Y2")
    labels = [1] * len(chosen) + [0] * len(excluded)
    found = client.smart_mask(read_image(image), [*chosen, *excluded], labels or None, around)
    write_bytes(output, found.mask_bytes())
    console.print(
        f"bbox {found.bbox}, area {found.area} px, score {found.score:.3f}, model {found.model}",
        highlight=False,
    )
