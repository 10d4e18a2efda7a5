"""`easel download [MODEL ...]`: model weights into MODELS_PATH, on a machine with internet,
for this one or for another without (copy the folder over)."""

from __future__ import annotations

from typing import Annotated

import typer


def download(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Generation models (built-in names or EASEL_GENERATION_MODELS ones) and "
            "`fastsam`; none: the configured generation model and segmenter.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch model weights into MODELS_PATH (a hub model into MODELS_PATH/<hub id>, which
    the server then loads with no network), skipping what is there. Exit 1 when something
    could not be fetched."""
    from easel.compose.weights import WeightsError, download_main

    try:
        download_main(models or [], report=typer.echo)  # whole lines: paths unwrapped
    except WeightsError as exc:
        typer.echo(f"easel download: {exc}", err=True)
        raise typer.Exit(1) from None
