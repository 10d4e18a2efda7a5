"""The pod's status as a coloured table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from easel.pod.restarts import describe_exit
from easel.pod.state import ProcessState, RunState

STATE_COLOURS = {
    RunState.RUNNING: "green",
    RunState.DEAD: "red",
    RunState.FAILED: "red",
    RunState.STOPPED: "dim",
}
HEALTH_COLOURS = {"healthy": "green", "degraded": "yellow", "loading": "yellow"}


def status_table(states: list[ProcessState], run_dir: Path) -> Table:
    up = sum(state.state.is_up for state in states)
    table = Table(title=f"easel pod ({run_dir}): {up}/{len(states)} running")
    columns = ("service", "pid", "port", "process", "health", "uptime", "restarts", "last exit")
    for column in (*columns, "log"):
        table.add_column(column)
    for state in states:
        health = state.health or "-"
        colour = HEALTH_COLOURS.get(health, "red" if state.health else "dim")
        process = f"[{STATE_COLOURS[state.state]}]{state.state}[/]"
        if state.state is RunState.DEAD:
            process += " [dim](stale PID file)[/]"
        table.add_row(
            state.name if state.planned else f"{state.name} [dim](not in settings)[/]",
            "-" if state.pid is None else str(state.pid),
            "-" if state.port is None else str(state.port),
            process,
            f"[{colour}]{health}[/]",
            "-" if state.uptime_s is None else format_uptime(state.uptime_s),
            str(state.restarts),
            last_exit(state),
            str(state.log),
        )
    return table


def last_exit(state: ProcessState) -> str:
    """How the process before this one ended, and when (local time): `SIGKILL 14:02:11`."""
    if state.last_exit_at is None:
        return "-"
    at = datetime.fromtimestamp(state.last_exit_at).astimezone().strftime("%H:%M:%S")
    return f"{describe_exit(state.last_exit_code).removeprefix('exit ')} {at}"


def notes(states: list[ProcessState]) -> list[str]:
    """What the table cannot say in a cell: why a process is not restarted."""
    return [
        f"[red]{escape(s.name)}: not restarted[/]: {escape(s.gave_up)}; see its log, then "
        "`easel up`"
        for s in states
        if s.state is RunState.FAILED and s.gave_up
    ]


def format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
