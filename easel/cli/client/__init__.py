"""The client commands: `easel generate`, `mask`, `jobs`, `utils`, `workflows` and
`models`, each talking to a server at --url (EASEL_URL) with --api-key (EASEL_API_KEY)
through the SDK (easel.client). Merged into `easel` by `app.add_typer(client_app)`."""

from __future__ import annotations

import typer

from easel.cli.client.catalogue import workflows
from easel.cli.client.connection import client_command
from easel.cli.client.generate import generate
from easel.cli.client.jobs import jobs_app
from easel.cli.client.mask import mask
from easel.cli.client.models import models_app
from easel.cli.client.utils_ops import utils_app

client_app = typer.Typer()
for name, body in (
    ("generate", generate),
    ("mask", mask),
    ("workflows", workflows),
):
    client_command(client_app, name)(body)
client_app.add_typer(jobs_app, name="jobs")
client_app.add_typer(utils_app, name="utils")
client_app.add_typer(models_app, name="models")  # list, pull, load, unload

__all__ = ["client_app"]
