"""What every `easel` command shares: its consoles and how it reads the settings."""

from __future__ import annotations

import typer
from rich.console import Console

from easel.compose.settings import EaselSettings, SettingsError

console = Console()
err_console = Console(stderr=True)


def load_settings() -> EaselSettings:
    """Settings from the environment, or one clear line and exit 2."""
    try:
        return EaselSettings.load()
    except SettingsError as exc:
        typer.echo(f"easel: {exc}", err=True)
        raise typer.Exit(2) from None
