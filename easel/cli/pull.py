"""`easel models pull NAME|HUB_ID` and the table of `easel models list --local`: this
machine's side of the models, read from its settings (MODELS_PATH), no server involved."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from easel.cli.common import load_settings
from easel.compose.pull_files import FAMILY_NAMES


def _known_family(value: str | None) -> str | None:
    if value is not None and value not in FAMILY_NAMES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FAMILY_NAMES)}")
    return value


def pull(
    target: Annotated[
        str,
        typer.Argument(
            metavar="NAME|HUB_ID",
            help="A catalogue name (`easel models list --local`) or a hub id (org/name).",
            show_default=False,
        ),
    ],
    variant: Annotated[
        str | None,
        typer.Option("--variant", help="The weights variant, e.g. fp16 (default: the plain ones)."),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            callback=_known_family,
            help=f"The model family: {', '.join(FAMILY_NAMES)} (default: the catalogue's, "
            "or read from the repo).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The name to load it by (default: the catalogue name, or "
            "the repo's name in lower case).",
        ),
    ] = None,
) -> None:
    """Fetch a diffusers model into MODELS_PATH/<name>: only the files its pipeline needs
    (safetensors weights, of --variant), resuming an interrupted download, and record it so
    that EASEL_GENERATION_MODEL=<name> loads it with no network. Exit 1 when it cannot."""
    from easel.compose.pull import plan_pull
    from easel.compose.pull import pull as fetch
    from easel.compose.pull_files import PullError

    generation = load_settings().generation
    try:
        plan = plan_pull(target, generation, variant=variant, family=family, name=name)
        fetch(plan, generation, report=typer.echo)
    except PullError as exc:
        typer.echo(f"easel models pull: {exc}", err=True)
        raise typer.Exit(1) from None


def local_models_table() -> Table:
    """Every model this machine knows, and where its weights are."""
    from easel.compose.local_models import local_models

    generation = load_settings().generation
    table = Table(title=escape(f"local models (MODELS_PATH {generation.models_path})"))
    for column in ("name", "family", "variant", "from", "weights", "description"):
        table.add_column(column)
    for model in local_models(generation):
        table.add_row(
            *(
                escape(cell or "-")
                for cell in (
                    model.name,
                    model.family,
                    model.variant,
                    model.origin,
                    model.weights,
                    model.description,
                )
            )
        )
    return table
