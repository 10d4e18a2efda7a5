"""The watchdog's decisions on real processes, with a clock the test moves: the backoff
doubles with each failure at start-up, it gives up after the configured number, and a
process whose PID file `down` removed is not started again."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from easel.pod.pidfiles import PidFiles
from easel.pod.plan import PodProcess
from easel.pod.restarts import RestartPolicy
from easel.pod.supervisor import Supervisor
from easel.pod.watchdog import Watchdog

WAIT = 30.0
CRASH = PodProcess("crash", (sys.executable, "-c", "raise SystemExit(3)"))
POLICY = RestartPolicy(backoff_s=1, backoff_max_s=60, max_failures=3, startup_window_s=100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(
        PidFiles(tmp_path / "run"), start_timeout=30, stop_grace=5, health_timeout=1
    )
    yield supervisor
    for record in supervisor.files.records():
        supervisor.stop(record)


def until_down(watchdog: Watchdog, clock: Clock) -> float | None:
    """Check until the watched process has exited: the seconds until its restart (None:
    given up or let go)."""
    deadline = time.monotonic() + WAIT
    while True:
        watchdog.check()
        watched = watchdog.watched.get(CRASH.name)
        if watched is None or watched.gave_up is not None:
            return None
        if watched.restart_at is not None:
            return watched.restart_at - clock.now
        assert time.monotonic() < deadline, "the process did not exit"
        time.sleep(0.02)


def test_backoff_doubles_and_it_gives_up_after_failures_at_start_up(sup: Supervisor) -> None:
    clock = Clock()
    watchdog = Watchdog(sup, POLICY, clock=clock)
    watchdog.watch(CRASH, sup.spawn(CRASH, 0))  # as after `up`: it started well once
    delays = []
    while (delay := until_down(watchdog, clock)) is not None:
        delays.append(delay)
        clock.now += delay - 0.01
        watchdog.check()  # not yet
        assert sup.files.read(CRASH.name).restarts == len(delays) - 1  # type: ignore[union-attr]
        clock.now += 0.01
        watchdog.check()  # restarted
    # A crash after a good start waits the base backoff; then each failure at start-up doubles.
    assert delays == [1, 2, 4]
    watchdog.check()  # records that it gives up
    record = sup.files.read(CRASH.name)
    assert record is not None and not record.alive and record.restarts == 3
    assert record.last_exit_code == 3
    assert record.gave_up == "failed at start-up 3 times in a row (last: exit code 3)"
    assert watchdog.watched == {}


def test_a_process_down_removed_is_not_started_again(sup: Supervisor) -> None:
    clock = Clock()
    watchdog = Watchdog(sup, POLICY, clock=clock)
    record = sup.spawn(CRASH, 0)
    watchdog.watch(CRASH, record)
    delay = until_down(watchdog, clock)
    assert delay is not None
    sup.files.remove(CRASH.name)  # what `down` does, under the lock, once it is stopped
    clock.now += delay
    watchdog.check()
    assert watchdog.watched == {} and sup.files.names() == []


def test_nothing_is_restarted_while_up_or_down_holds_the_lock(sup: Supervisor) -> None:
    clock = Clock()
    watchdog = Watchdog(sup, POLICY, clock=clock)
    record = sup.spawn(CRASH, 0)
    watchdog.watch(CRASH, record)
    delay = until_down(watchdog, clock)
    assert delay is not None
    clock.now += delay
    with sup.files.lock() as held:
        assert held
        watchdog.check()
        assert sup.files.read(CRASH.name) == record  # waits for the lock
    watchdog.check()
    restarted = sup.files.read(CRASH.name)
    assert restarted is not None and restarted.pid != record.pid and restarted.restarts == 1
