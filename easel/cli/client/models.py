"""`easel models`: the server's catalogue (bare, as before, or `list`), what this machine
has (`list --local`), `pull` a model into MODELS_PATH (easel.cli.pull), and `load` /
`unload` one on the server."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from easel.cli.client.catalogue import models as server_models
from easel.cli.client.connection import (
    DEFAULT_TIMEOUT,
    ApiKey,
    Timeout,
    Url,
    client_command,
    with_client,
)
from easel.cli.client.failures import EXIT_CODES
from easel.cli.common import console
from easel.cli.pull import local_models_table, pull
from easel.client import Client
from easel.client.config import DEFAULT_URL

models_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
models_app.command("pull")(pull)

Name = Annotated[str, typer.Argument(help="A model name, as `easel models` lists them.")]


@models_app.callback(epilog=EXIT_CODES)
def main(
    ctx: typer.Context,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> None:
    """The server's models (with no command, as `easel models list`); pull one into
    MODELS_PATH; load or unload one on the server."""
    if ctx.invoked_subcommand is None:  # compat: `easel models` listed before it had commands
        with_client(server_models)(url=url, api_key=api_key, timeout=timeout)


@client_command(models_app, "list")
def list_models(
    client: Client,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="This machine's models instead (built-in, pulled, configured) and whether "
            "their weights are here: no server needed.",
        ),
    ] = False,
) -> None:
    """The server's model catalogue (each model, whether it is loaded, its LoRAs and
    ControlNets); with --local, this machine's models and where their weights are."""
    if local:
        console.print(local_models_table())
    else:
        server_models(client)


def _said(name: str, answer: dict[str, Any]) -> str:
    """`sdxl: loaded in 7.812s (cuda, float16, 6.94 GB)`: the server's message and where
    the model now is."""
    where = [str(answer[key]) for key in ("device", "dtype") if answer.get(key)]
    if answer.get("memory_bytes"):
        where.append(f"{answer['memory_bytes'] / 1e9:.2f} GB")
    said = f"{name}: {answer.get('message') or answer.get('state', 'done')}"
    return said + (f" ({', '.join(where)})" if where and answer.get("loaded") else "")


@client_command(models_app, "load")
def load(client: Client, name: Name) -> None:
    """Load a model on the server now (under its memory budget: it may unload the least
    recently used idle one)."""
    state = client.load_model(name)
    console.print(escape(_said(name, state)), highlight=False)


@client_command(models_app, "unload")
def unload(client: Client, name: Name) -> None:
    """Unload a model on the server, freeing its memory (a later request loads it again,
    where the server allows)."""
    state = client.unload_model(name)
    console.print(escape(_said(name, state)), highlight=False)
