"""`easel workflows` and `easel models`: what the server can run, as tables."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from easel.cli.common import console
from easel.client import Client


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(str(key) for key in value) or "-"
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value) or "-"
    return "-" if value is None else str(value)


def _table(title: str, rows: list[dict[str, Any]], first: tuple[str, ...]) -> Table:
    """Columns: `first`, then every other field the rows have (nested ones by their names)."""
    columns = [*first, *(k for row in rows for k in row if k not in first)]
    table = Table(title=escape(title))
    for column in dict.fromkeys(columns):
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(_cell(row.get(column))) for column in dict.fromkeys(columns)))
    return table


def workflows(client: Client) -> None:
    """The server's ComfyUI workflows and their parameters (none with the diffusers engine)."""
    listing = client.workflows()
    rows = list(listing.get("workflows") or [])
    engine = listing.get("engine", "?")
    if not rows:
        console.print(f"engine {escape(str(engine))}: no workflows (they are ComfyUI's)")
        return
    console.print(_table(f"workflows ({engine})", rows, ("name", "description", "parameters")))
    for mode, name in (listing.get("mode_workflows") or {}).items():
        console.print(f"mode {escape(str(mode))} -> {escape(str(name))}", highlight=False)


def models(client: Client) -> None:
    """The server's model catalogue: each model, whether it is loaded, its LoRAs and
    ControlNets."""
    catalogue = client.models()
    rows = list(catalogue.get("models") or [])
    title = (
        f"models ({catalogue.get('engine', '?')}; default {catalogue.get('default_model', '?')})"
    )
    if not rows:
        console.print(f"{escape(title)}: none configured")
        return
    console.print(_table(title, rows, ("name", "family", "loaded")))
