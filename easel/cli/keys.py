"""`easel keys create | list | revoke`: the gateway's API keys file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from easel.cli.common import console, load_settings
from easel.compose.access import KeyAdmin, KeyFileError, keys_of
from easel.core.identity import ApiScope
from easel.core.logging import configure_logging

keys_app = typer.Typer(
    help="The gateway's API keys (EASEL_KEYS_FILE, default EASEL_DATA_DIR/keys.json).",
    no_args_is_help=True,
)


def _scopes(text: str) -> list[ApiScope]:
    try:
        return [ApiScope(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        known = ", ".join(scope.value for scope in ApiScope)
        typer.echo(f"easel: --scopes {text!r}: each must be one of {known}", err=True)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def _keys_admin() -> Iterator[KeyAdmin]:
    """The keys file of these settings; a KeyFileError is one line and exit 1."""
    settings = load_settings()
    configure_logging(settings.shared.log_level, settings.shared.log_format)  # audit lines
    try:
        yield keys_of(settings)
    except KeyFileError as exc:
        typer.echo(f"easel: {exc}", err=True)
        raise typer.Exit(1) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for; logs and metrics show it.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: generate, segment, utils, jobs, admin.")
    ],
    max_concurrent_jobs: Annotated[
        int | None, typer.Option(min=1, help="Jobs queued or running at once.")
    ] = None,
    requests_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute in each route class.")
    ] = None,
) -> None:
    """Create a key and print it (on stdout, alone): it is not kept, only its hash."""
    chosen = _scopes(scopes)
    with _keys_admin() as admin:
        record, key = admin.create(
            name,
            chosen,
            max_concurrent_jobs=max_concurrent_jobs,
            requests_per_minute=requests_per_minute,
        )
    typer.echo(key)
    shown = ",".join(sorted(record.scopes))
    typer.echo(f"key {name!r} created ({shown}); it will not be shown again", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """Every key's name, scopes, limits and creation time (never a key or its hash)."""
    with _keys_admin() as admin:
        records = admin.records()
    if not records:
        console.print(f"no keys in {escape(str(admin.keys_path))}")
        return
    table = Table(title=f"API keys: {escape(str(admin.keys_path))}")
    for column in ("name", "scopes", "max jobs", "requests/min", "created"):
        table.add_column(column)
    for record in records:
        table.add_row(
            escape(record.name),
            ",".join(sorted(record.scopes)),
            str(record.max_concurrent_jobs or "-"),
            str(record.requests_per_minute or "-"),
            record.created.isoformat(timespec="seconds"),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Remove a key; a running gateway refuses it within about a second."""
    with _keys_admin() as admin:
        admin.revoke(name)
        left = admin.records()
    typer.echo(f"key {name!r} revoked")
    if not left:
        typer.echo(
            "no keys are left: a running gateway now refuses every keyed request; started "
            "again without keys, it serves only on loopback",
            err=True,
        )
