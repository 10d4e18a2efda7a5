"""`easel generate`: text-to-image, edit or inpaint on a server, with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from easel.cli.client.files import format_for, read_image, write_result
from easel.cli.client.follow import streamed, waited
from easel.cli.client.options import Format, Output, Quality, given
from easel.cli.client.parsing import Size, size
from easel.cli.common import err_console
from easel.client import Client

ImageFile = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, readable=True, help="An input image (edit)."),
]


def generate(
    client: Client,
    prompt: Annotated[
        str | None, typer.Argument(help="What to draw; optional for a pure edit.")
    ] = None,
    output: Output = Path("out.png"),
    model: Annotated[str | None, typer.Option(help="A configured model (`easel models`).")] = None,
    dimensions: Annotated[
        Size | None,
        typer.Option("--size", metavar="WxH", parser=size, help="Width x height, e.g. 512x512."),
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Denoising steps.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Random when absent.")] = None,
    guidance: Annotated[float | None, typer.Option(min=0, help="Guidance scale.")] = None,
    negative: Annotated[str | None, typer.Option(help="Negative prompt.")] = None,
    image: ImageFile = None,
    mask: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="White repaints (inpaint; needs --image).",
        ),
    ] = None,
    style: Annotated[str | None, typer.Option(help="A style preset of the server.")] = None,
    num_images: Annotated[
        int, typer.Option("--num-images", "--n", "-n", min=1, help="Images.")
    ] = 1,
    fmt: Format = None,
    quality: Quality = None,
    as_job: Annotated[
        bool,
        typer.Option(
            "--async", help="Submit as a job and wait for it (survives a dropped connection)."
        ),
    ] = False,
    by_url: Annotated[
        bool,
        typer.Option(
            "--by-url",
            help="The server stores the images and answers with links, fetched then "
            "(`output: url`); the same files either way.",
        ),
    ] = False,
) -> None:
    """Generate images (or edit with --image, inpaint with --image and --mask) and write
    them to -o, with a progress bar (steps, ETA) on stderr."""
    fields: dict[str, Any] = {
        "model": model,
        "steps": steps,
        "seed": seed,
        "guidance_scale": guidance,
        "negative_prompt": negative,
        "style": style,
        "num_images": num_images,
        "output_format": format_for(output, fmt).value,
        "quality": quality,
        "image": None if image is None else read_image(image),
        "mask": None if mask is None else read_image(mask),
        "output": "url" if by_url else None,
    }
    if dimensions is not None:
        fields["width"], fields["height"] = dimensions
    if as_job:
        task_id = client.submit(prompt, **given(fields))
        err_console.print(
            f"job {task_id} queued (`easel jobs wait {task_id}` to follow it later)",
            highlight=False,
        )
        result = waited(client, task_id, max_wait=None)
    else:
        result = streamed(client, prompt, given(fields))
    write_result(output, result)
