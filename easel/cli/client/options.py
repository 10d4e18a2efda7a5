"""Options several client commands share, typed once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from easel.core.images import OutputFormat

InputImage = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="An image file.")
]
Output = Annotated[
    Path,
    typer.Option("--output", "-o", dir_okay=False, help="Where to write the image "
                 "(several: NAME.png, NAME-1.png, ...)."),
]  # fmt: skip
Format = Annotated[
    OutputFormat | None,
    typer.Option("--format", help="png, jpeg or webp (default: from -o's suffix, else png)."),
]
Quality = Annotated[
    int | None, typer.Option(min=1, max=100, help="jpeg/webp quality (default: the server's).")
]
TaskId = Annotated[str, typer.Argument(help="The job's task id (from `easel generate --async`).")]


def given(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The request fields the user gave: an option left unset is left out (the server's
    default applies)."""
    return {name: value for name, value in fields.items() if value is not None}
