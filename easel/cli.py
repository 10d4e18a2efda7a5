"""The `easel` command: serve the all-in-one server or one service, check health."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from easel.core.logging import configure_logging
from easel.core.settings import SERVICE_NAMES, Settings, describe_validation_error
from easel.gateway.registry import GATEWAY_PORT, SERVICES, service_by_cli_name

app = typer.Typer(help="easel: a self-hostable backend for AI image generation and editing.")
console = Console()
err_console = Console(stderr=True)

ServeTarget = StrEnum(  # type: ignore[misc]
    "ServeTarget", {name: name for name in ("all", "gateway", *(s.cli_name for s in SERVICES))}
)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or one clear line and exit 2."""
    try:
        settings = Settings()
        return settings.model_copy(update=overrides) if overrides else settings
    except ValidationError as exc:
        typer.echo(f"easel: {describe_validation_error(exc)}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    target: Annotated[
        ServeTarget,
        typer.Argument(
            help="all: every service in this process; gateway: services with a URL "
            "are remote; or one service on its own."
        ),
    ] = ServeTarget("all"),  # noqa: B008
    host: Annotated[str | None, typer.Option(help="Bind address [EASEL_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port; each service has its default.")] = None,
) -> None:
    """Run a server in the foreground."""
    import uvicorn

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if target.value == "all":
        settings = settings.model_copy(update={f"{n}_url": None for n in SERVICE_NAMES})
    if target.value in ("all", "gateway"):
        from easel.gateway.app import create_app

        application = create_app(settings)
        default_port = settings.port if "port" in settings.model_fields_set else GATEWAY_PORT
    else:
        spec = service_by_cli_name(target.value)
        application = spec.load_factory()(settings)
        default_port = spec.default_port
        if spec.name == "generation":  # compat: the first version's GPU_SERVER_HOST/PORT
            default_port = settings.generation_port
            host = host or settings.generation_host
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or default_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once [EASEL_WORKER_CONCURRENCY].")
    ] = None,
) -> None:
    """Run a job worker: claims queued jobs and runs them through the generation service
    (EASEL_GENERATION_URL, or in this process when unset)."""
    import asyncio

    from easel.jobs.standalone import run_worker

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run_worker(settings, concurrency=concurrency))


def _health_table(body: dict[str, object]) -> Table:
    colours = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "dim"}
    table = Table(title=f"easel system health: {body.get('status')}")
    for column in ("service", "status", "latency ms", "mode", "where", "detail"):
        table.add_column(column)
    services = body.get("services")
    for name, report in services.items() if isinstance(services, dict) else []:
        status = str(report.get("status"))
        latency = report.get("latency_ms")
        detail = report.get("detail") or {}
        table.add_row(
            name,
            f"[{colours.get(status, 'white')}]{status}[/]",
            "-" if latency is None else f"{latency:.1f}",
            str(report.get("mode", "")),
            str(report.get("location", "")),
            ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, list | dict)),
        )
    return table


@app.command()
def health(
    url: Annotated[str, typer.Argument(help="The gateway's base URL.")] = "http://127.0.0.1:8000",
    deep: Annotated[bool, typer.Option(help="Probe passive services too.")] = False,
) -> None:
    """Print every service's health as a table; exit 0 only when all are healthy."""
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/api/system/health", params={"deep": deep}, timeout=30
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        err_console.print(f"[red]easel: cannot read health from {url}: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print(_health_table(body))
    raise typer.Exit(0 if body.get("status") == "healthy" else 1)


def main() -> None:
    app(prog_name="easel")


if __name__ == "__main__":
    main()
