"""The suite's progress deadline waits as long as what it watches keeps moving."""

from __future__ import annotations

from tests.support.waiting import ProgressDeadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_is_not_reached_while_the_state_keeps_changing() -> None:
    clock = FakeClock()
    deadline = ProgressDeadline(60, limit=10_000, clock=clock)
    for step in range(300):  # 300 s of a slow job, a step every second
        clock.now += 1
        deadline.observe(step)
        assert not deadline.expired()


def test_a_deadline_is_reached_once_the_state_stops_changing() -> None:
    clock = FakeClock()
    deadline = ProgressDeadline(60, clock=clock)
    deadline.observe(("running", 31))
    clock.now += 59
    deadline.observe(("running", 31))  # the same reading is no progress
    assert not deadline.expired()
    clock.now += 2
    assert deadline.expired()


def test_a_deadline_has_a_backstop_against_endless_change() -> None:
    clock = FakeClock()
    deadline = ProgressDeadline(60, limit=120, clock=clock)
    for step in range(121):
        clock.now += 1
        deadline.observe(step)
    assert deadline.expired()
