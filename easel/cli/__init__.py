"""The `easel` command: serve the all-in-one server or one service, check health, run the
pod, manage API keys."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from enum import StrEnum
from typing import Annotated, NoReturn

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from easel.cli.client import client_app
from easel.cli.common import console, err_console, load_settings
from easel.cli.keys import keys_app
from easel.cli.weights import download
from easel.compose.access import KeyFileError, check_serving
from easel.compose.services import GATEWAY, GATEWAY_PORT, SERVICES, service_named
from easel.compose.settings import EaselSettings
from easel.core import telemetry
from easel.core.binding import UnsafeBinding
from easel.core.internal_guard import bind_refusal
from easel.core.logging import configure_logging
from easel.core.telemetry import Telemetry
from easel.pod import handoff, lifecycle, watchdog
from easel.pod import logs as pod_logs
from easel.pod.internal_token import describe_token, pod_token
from easel.pod.pidfiles import WATCHDOG, PidFiles
from easel.pod.plan import PlanError, PodProcess, build_plan, process_name
from easel.pod.state import snapshot
from easel.pod.supervisor import Supervisor
from easel.pod.table import notes, status_table

app = typer.Typer(help="easel: a self-hostable backend for AI image generation and editing.")
app.add_typer(keys_app, name="keys")
app.add_typer(client_app)  # generate, mask, jobs, utils, workflows, models
app.command()(download)

# Every spelling a service answers to (image-utils, job-manager, and compat: jobs).
ServeTarget = StrEnum(  # type: ignore[misc]
    "ServeTarget",
    {
        name: name
        for name in ("all", GATEWAY, *(n for s in SERVICES for n in (s.cli_name, *s.aliases)))
    },
)


def start_telemetry(settings: EaselSettings, service: str) -> Telemetry | None:
    """OpenTelemetry when EASEL_OTEL_ENDPOINT is set, or one clear line and exit 2
    when the `otel` extra is missing."""
    try:
        return telemetry.setup(settings.shared.otel_endpoint, service=service)
    except telemetry.TelemetryUnavailable as exc:
        typer.echo(f"easel: {exc}", err=True)
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

    from easel.compose.apps import service_app
    from easel.compose.gateway import create_gateway

    settings = load_settings()
    configure_logging(settings.shared.log_level, settings.shared.log_format)
    if host is not None:  # the gateway decides by its bind address (e.g. its rate limits)
        settings = replace(settings, gateway=settings.gateway.model_copy(update={"host": host}))
    gateway = settings.gateway
    if target.value == "all":
        settings = settings.all_in_process()
    if target.value in ("all", GATEWAY):
        _check_serving(settings, host or gateway.host)
        application = create_gateway(settings)
        default_port = gateway.port if "port" in gateway.model_fields_set else GATEWAY_PORT
    else:
        spec = service_named(target.value)
        application = service_app(target.value, settings)
        default_port = spec.default_port
        if spec.name == "generation":  # compat: the first version's GPU_SERVER_HOST/PORT
            default_port = settings.generation.generation_port
            host = host or settings.generation.generation_host
        problem = bind_refusal(settings.shared, spec.cli_name, host or gateway.host)
        if problem is not None:
            typer.echo(f"easel: {problem}", err=True)
            raise typer.Exit(2)
    traces = start_telemetry(settings, target.value)
    if traces is not None:
        traces.instrument_app(application)
    uvicorn.run(
        application,
        host=host or gateway.host,
        port=port or default_port,
        log_config=None,
        access_log=False,
        # The client's address is the gateway's to decide, from EASEL_TRUSTED_PROXIES only
        # (easel.gateway.client_address): uvicorn would believe X-Forwarded-For from any
        # local process.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


def _check_serving(settings: EaselSettings, host: str) -> None:
    """Without API keys, only loopback (or EASEL_ALLOW_UNAUTHENTICATED, with a warning);
    else one clear line and exit 2."""
    try:
        warning = check_serving(settings, host)
    except (UnsafeBinding, KeyFileError) as exc:
        typer.echo(f"easel: {exc}", err=True)
        raise typer.Exit(2) from None
    if warning is not None:
        logging.getLogger("easel.gateway").warning(warning)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once [EASEL_WORKER_CONCURRENCY].")
    ] = None,
) -> None:
    """Run a job worker: claims queued jobs and runs them through the generation service
    (EASEL_GENERATION_URL, or in this process when unset)."""
    import asyncio

    from easel.compose.worker import run_worker

    settings = load_settings()
    configure_logging(settings.shared.log_level, settings.shared.log_format)
    start_telemetry(settings, "worker")
    asyncio.run(run_worker(settings, concurrency=concurrency))


def _health_table(body: dict[str, object]) -> Table:
    colours = {
        "healthy": "green",
        "degraded": "yellow",
        "loading": "yellow",
        "unhealthy": "red",
        "unknown": "dim",
    }
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
    url: Annotated[
        str, typer.Argument(help="The gateway's base URL.", envvar="EASEL_URL")
    ] = "http://127.0.0.1:8000",
    deep: Annotated[bool, typer.Option(help="Probe passive services too.")] = False,
    key: Annotated[
        str | None,
        typer.Option(
            help="An admin API key, where the server has keys on.", envvar="EASEL_API_KEY"
        ),
    ] = None,
) -> None:
    """Print every service's health as a table; exit 0 only when all are healthy."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/api/system/health",
            params={"deep": deep},
            headers=headers,
            timeout=30,
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        err_console.print(f"[red]easel: cannot read health from {url}: {exc}[/red]")
        raise typer.Exit(1) from None
    if response.status_code in (401, 403):
        message = body.get("error", {}).get("message", response.reason_phrase)
        err_console.print(f"[red]easel: {escape(str(message))} (--key)[/red]")
        raise typer.Exit(1)
    console.print(_health_table(body))
    raise typer.Exit(0 if body.get("status") == "healthy" else 1)


def _pod(
    settings: EaselSettings, *, with_token: bool = False
) -> tuple[list[PodProcess], Supervisor]:
    """`with_token`: the plan that starts processes, each given the pod's internal token
    (made now if there is none yet); the others only look at the pod."""
    try:
        token = pod_token(settings).value if with_token else None
        plan = build_plan(settings, internal_token=token)
    except PlanError as exc:
        typer.echo(f"easel: {exc}", err=True)
        raise typer.Exit(2) from None
    supervisor = Supervisor(
        PidFiles(settings.pod.run_dir),
        start_timeout=settings.pod.pod_start_timeout,
        stop_grace=settings.pod.pod_stop_grace,
        health_timeout=settings.gateway.health_timeout,
    )
    return plan, supervisor


# `down` waits this long for the lock: the watchdog holds it for a moment per restart.
DOWN_LOCK_WAIT = 10.0


@contextlib.contextmanager
def _locked(supervisor: Supervisor, wait_s: float = 0.0) -> Iterator[None]:
    with supervisor.files.lock(wait_s) as held:
        if not held:
            _locked_out(supervisor)
        yield


def _locked_out(supervisor: Supervisor) -> NoReturn:
    err_console.print(
        f"[red]easel: another `easel up` or `easel down` is running on "
        f"{escape(str(supervisor.files.run_dir))}[/red]"
    )
    raise typer.Exit(1)


_LEVEL_STYLES = {
    lifecycle.Level.OK: "green",
    lifecycle.Level.INFO: "cyan",
    lifecycle.Level.WARN: "yellow",
    lifecycle.Level.FAIL: "red",
}


def _report(level: lifecycle.Level, name: str, message: str) -> None:
    console.print(f"[{_LEVEL_STYLES[level]}]{escape(name)}[/]: {escape(message)}")


@app.command()
def up() -> None:
    """Start the pod: each service its own process, in the background.

    ComfyUI (when EASEL_COMFYUI_COMMAND is set), the services (EASEL_POD_SERVICES),
    EASEL_POD_WORKERS workers and the gateway, each waited for until it answers. What
    already runs is not started twice; a failure stops what this run started and exits 1.
    A watchdog stays behind and restarts a process that exits (EASEL_POD_RESTART).
    """
    settings = load_settings()
    plan, supervisor = _pod(settings)
    result = handoff.start_pod(supervisor.files, _report)
    if result.locked:
        _locked_out(supervisor)
    if result.lost:
        log = supervisor.files.log_path(WATCHDOG)
        err_console.print(f"[red]easel up failed[/red]; the last lines of {escape(str(log))}:")
        err_console.print(pod_logs.tail(log, 20), markup=False, highlight=False)
        raise typer.Exit(1)
    if result.failure is not None:
        log = supervisor.files.log_path(result.failure[0])
        err_console.print(f"[red]easel up failed[/red]; the last lines of {escape(str(log))}:")
        err_console.print(pod_logs.tail(log, 20), markup=False, highlight=False)
        raise typer.Exit(1)
    if not result.started:
        console.print("everything was already running")
    console.print(
        status_table(
            snapshot(plan, supervisor.files, settings.gateway.health_timeout), settings.pod.run_dir
        )
    )


@app.command()
def down(
    names: Annotated[
        list[str] | None, typer.Argument(help="Only these processes (default: all).")
    ] = None,
) -> None:
    """Stop the pod, last started first.

    SIGTERM to each process and its children, SIGKILL after EASEL_POD_STOP_GRACE seconds;
    the PID files are removed.
    """
    settings = load_settings()
    plan, supervisor = _pod(settings)
    # The names as typed too: a pod started by an earlier version named its job manager
    # `jobs`, and its PID file still says so.
    chosen = {process_name(name) for name in names} | set(names) if names else None
    with _locked(supervisor, DOWN_LOCK_WAIT):
        if chosen is None:  # first: it must not restart what is being stopped
            ended = watchdog.stop_watchdog(supervisor.files, settings.pod.pod_stop_grace)
            if ended is not None:
                _report(lifecycle.Level.OK, WATCHDOG,
                        f"ended (pid {ended.pid}); nothing is restarted from now on")  # fmt: skip
        running = lifecycle.down(supervisor, _report, chosen)
    if not running:
        console.print("nothing was running")


@app.command()
def status() -> None:
    """Show the pod: pid, port, process, health, uptime and log of each process.

    Exit 0 only when every configured process runs and answers its health endpoint.
    """
    settings = load_settings()
    plan, supervisor = _pod(settings)
    states = snapshot(plan, supervisor.files, settings.gateway.health_timeout)
    console.print(status_table(states, settings.pod.run_dir))
    for note in notes(states):
        console.print(note)
    console.print(escape(describe_token(settings)))
    guard = supervisor.files.read_watchdog()
    if guard is not None and guard.alive:
        console.print(f"watchdog: running (pid {guard.pid}); restarts what exits")
    elif any(state.state.is_up for state in states):
        console.print("watchdog: not running; a process that exits is not restarted")
    planned = [state for state in states if state.planned]
    raise typer.Exit(0 if all(s.state.is_up and s.answered for s in planned) else 1)


@app.command(handoff.WATCHDOG_COMMAND, hidden=True)
def pod_watchdog() -> None:
    """What `easel up` runs in the background: starts the pod, then restarts what exits."""
    settings = load_settings()
    plan, supervisor = _pod(settings, with_token=True)
    raise typer.Exit(handoff.run_watchdog(plan, supervisor, settings.pod))


@app.command()
def logs(
    service: Annotated[str | None, typer.Argument(help="One process (default: all).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Last lines to show.")] = 50,
) -> None:
    """Print the pod's logs (EASEL_RUN_DIR/<name>.log)."""
    settings = load_settings()
    plan, supervisor = _pod(settings)
    known = pod_logs.log_paths([p.name for p in plan], supervisor.files)
    if service is not None:
        name = process_name(service)
        if name not in known:
            typer.echo(f"easel: no log for {service!r}; known: {', '.join(known)}", err=True)
            raise typer.Exit(2)
        known = {name: known[name]}
    for name, path in known.items():
        if not path.exists():
            continue
        if len(known) > 1:
            typer.echo(f"==> {name} <==")
        typer.echo(pod_logs.tail(path, lines))
    if follow:
        prefix = len(known) > 1

        def write(name: str, text: str) -> None:
            for line in text.splitlines():
                typer.echo(f"{name} | {line}" if prefix else line)

        with contextlib.suppress(KeyboardInterrupt):
            pod_logs.follow(known, write)


def main() -> None:
    app(prog_name="easel")


if __name__ == "__main__":
    main()
