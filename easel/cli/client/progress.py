"""The progress bar of `easel generate` and `easel jobs wait`: what the request is doing
(queued at a position, generating), step of total, elapsed time and ETA, on stderr.

On a terminal it redraws in place; elsewhere (a pipe, a CI log) rich draws it once, as it
ends, so the last step and total are still on record."""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from easel.cli.common import err_console


class StepBar:
    """One bar for one request or job: `with StepBar("generating") as bar: bar.step(3, 20)`.
    Drawn from the first news on, so that a refused request leaves no empty bar."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> StepBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._progress.stop()

    def _update(
        self, description: str, completed: int | None = None, total: int | None = None
    ) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(description, total=None)
        self._progress.update(self._task, description=description, completed=completed, total=total)

    def queued(self, position: int | None) -> None:
        """Waiting in a queue; `position` requests ahead (0: next)."""
        where = "" if position is None else f" ({position} ahead)"
        self._update(f"{self._label}: queued{where}")

    def running(self) -> None:
        self._update(f"{self._label}: running")

    def step(self, step: int, total: int) -> None:
        if total > 0:
            self._update(f"{self._label}: running", completed=step, total=total)

    def note(self, text: str) -> None:
        """Any other state worth showing (waiting for the generation service...)."""
        self._update(f"{self._label}: {text}")
