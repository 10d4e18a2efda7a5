"""`easel jobs list | status | wait | cancel | result`: the jobs of this API key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from easel.cli.client.connection import client_command
from easel.cli.client.files import write_result
from easel.cli.client.follow import waited
from easel.cli.client.options import Output, TaskId
from easel.cli.common import console
from easel.client import Client, JobInfo

jobs_app = typer.Typer(
    help="Jobs queued with `easel generate --async` (or the API).", no_args_is_help=True
)

_COLOURS = {"queued": "cyan", "running": "yellow", "done": "green", "failed": "red"}
_STATUSES = ("queued", "running", "done", "failed", "cancelled")


def _cells(job: JobInfo) -> list[str]:
    """status, progress, queue position, ETA and created: as `list` and `status` show them."""
    created = (job.raw.get("timestamps") or {}).get("created_at")
    return [
        f"[{_COLOURS.get(job.status, 'dim')}]{job.status}[/]",
        f"{job.step}/{job.total}" if job.total else "-",
        "-" if job.queue_position is None else str(job.queue_position),
        "-" if job.eta_s is None else f"{job.eta_s:.1f}s",
        "-" if created is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
    ]


_COLUMNS = ("status", "steps", "queue", "eta", "created")


@client_command(jobs_app, "list")
def jobs_list(
    client: Client,
    status: Annotated[
        str | None, typer.Option(help=f"Only jobs in this state: {', '.join(_STATUSES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="The newest this many.")] = 50,
) -> None:
    """This key's jobs (an admin key's: every key's), newest first."""
    page = client.jobs(status=status, limit=limit)
    if not page.jobs:
        console.print("no jobs" + ("" if status is None else f" {escape(status)}"))
        return
    table = Table(title="jobs, newest first")
    for column in ("task id", *_COLUMNS, "owner"):
        table.add_column(column)
    for job in page.jobs:
        table.add_row(job.task_id, *_cells(job), escape(str(job.raw.get("owner", ""))))
    console.print(table)
    if page.next_cursor:
        console.print(f"(more: --limit above {limit})")


@client_command(jobs_app, "status")
def jobs_status(client: Client, task_id: TaskId) -> None:
    """A job's status, steps, queue position, ETA and error."""
    job = client.status(task_id)
    table = Table(title=f"job {task_id}", show_header=False)
    for name, cell in zip(_COLUMNS, _cells(job), strict=True):
        table.add_row(name, cell)
    if job.error:
        table.add_row("error", escape(f"{job.error.get('code')}: {job.error.get('message')}"))
    console.print(table)


@client_command(jobs_app, "wait")
def jobs_wait(
    client: Client,
    task_id: TaskId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Write the images here too."),
    ] = None,
    max_wait: Annotated[
        float | None, typer.Option(min=0.1, help="Give up after this many seconds (exit 2).")
    ] = None,
) -> None:
    """Wait for a job with a progress bar (queue position, steps, ETA); exit 1 when it
    fails or is cancelled."""
    result = waited(client, task_id, max_wait)
    if output is not None:
        write_result(output, result)
    else:
        console.print(
            f"job {task_id} done: `easel jobs result {task_id} -o out.png` writes its images"
        )


@client_command(jobs_app, "cancel")
def jobs_cancel(client: Client, task_id: TaskId) -> None:
    """Cancel a queued or running job (a running one stops at its next step)."""
    job = client.cancel(task_id)
    after = "" if job.is_terminal else " (cancelling: it stops at its next step)"
    console.print(f"job {task_id}: {job.status}{after}")


@client_command(jobs_app, "result")
def jobs_result(client: Client, task_id: TaskId, output: Output = Path("out.png")) -> None:
    """Write a done job's images to -o (exit 1 while it is not done)."""
    write_result(output, client.result(task_id))
