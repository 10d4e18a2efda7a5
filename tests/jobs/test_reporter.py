"""JobReporter: a running job's events written behind the relay, coalesced, on each store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partialmethod
from typing import Any

import pytest

from easel.core.events import GenerationStarted, JobEvent, JobSucceeded, Progress
from easel.jobs.models import JobStatus
from easel.jobs.reporter import JobReporter
from tests.jobs.test_store_conformance import NOW, submit

WORKER = "w1"


def step(n: int) -> Progress:
    return Progress(step=n, total=4)


NOTE = GenerationStarted()  # an event without progress
DONE = JobSucceeded(result={})


@dataclass
class Write:
    name: str
    events: list[JobEvent]
    progress: tuple[int, int] | None
    owned: bool | None = None  # the store's answer, once it landed
    cancelled: bool = False


class SpyStore:
    """The real store, recording each report/finish; `hold` keeps a write from landing
    until set, `fail` makes the next write raise (before it reaches the store)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.writes: list[Write] = []
        self.hold: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.changed = asyncio.Condition()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def poke(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, predicate: Any) -> None:
        """Wait for `predicate`; the bound only turns a hang into a failure."""
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(predicate)

    async def _write(self, name: str, job_id: str, worker_id: str, **kwargs: Any) -> bool:
        write = Write(name, list(kwargs["events"]), kwargs.get("progress"))
        self.writes.append(write)
        await self.poke()
        try:
            if self.hold is not None:
                await self.hold.wait()
        except asyncio.CancelledError:
            write.cancelled = True
            raise
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        write.owned = await getattr(self.store, name)(job_id, worker_id, **kwargs)
        await self.poke()
        return write.owned

    report = partialmethod(_write, "report")
    finish = partialmethod(_write, "finish")


@dataclass
class Running:
    store: Any
    spy: SpyStore
    reporter: JobReporter
    notified: list[tuple[JobEvent, list[JobEvent]]]

    async def log(self) -> list[JobEvent]:
        """The job's events after the submit's `queued` and the claim's `started`."""
        return [event for _, event in await self.store.read(self.reporter.job.id, after=2)]

    def sent(self) -> list[tuple[str, list[JobEvent], tuple[int, int] | None]]:
        return [(w.name, w.events, w.progress) for w in self.spy.writes]

    def told(self) -> list[JobEvent]:
        return [event for event, _ in self.notified]


@pytest.fixture()
async def running(store):
    await submit(store)
    job = await store.claim(WORKER, now=NOW)
    spy = SpyStore(store)
    notified: list[tuple[JobEvent, list[JobEvent]]] = []

    async def notify(job, event):  # records each event with the log as it stood then
        notified.append((event, [e for _, e in await store.read(job.id, after=0)]))
        await spy.poke()

    reporter = JobReporter(store=spy, job=job, worker_id=WORKER, notify=notify)
    yield Running(store, spy, reporter, notified)
    reporter.close()


async def test_a_lone_event_is_written_at_once(running) -> None:
    """The first event of a quiet stream goes out on the next turn of the loop, alone;
    notify hears of it only once it is in the log."""
    running.reporter.add(step(1), progress=(1, 4))
    await asyncio.sleep(0)
    assert running.sent() == [("report", [step(1)], (1, 4))]
    await running.spy.until(lambda: running.notified)
    ((event, logged_then),) = running.notified
    assert event == step(1) and step(1) in logged_then
    assert await running.log() == [step(1)]


async def test_events_behind_a_write_in_flight_go_as_one_report(running) -> None:
    """What gathers while a write is in flight is sent as one report, in order, with the
    latest progress only; the record shows it and the log holds every event."""
    running.spy.hold = asyncio.Event()
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    running.reporter.add(step(2), progress=(2, 4))
    running.reporter.add(step(3), progress=(3, 4))
    running.reporter.add(NOTE)  # no progress: the latest one stands
    running.spy.hold.set()
    await running.spy.until(lambda: len(running.notified) == 4)
    assert running.sent() == [
        ("report", [step(1)], (1, 4)),
        ("report", [step(2), step(3), NOTE], (3, 4)),
    ]
    job = await running.store.get(running.reporter.job.id)
    assert (job.progress_step, job.progress_total) == (3, 4)
    assert await running.log() == [step(1), step(2), step(3), NOTE]
    assert running.told() == await running.log()


async def test_finish_carries_what_is_still_gathered(running) -> None:
    """Events gathered behind the write in flight ride with the terminal event in the one
    finish call, logged before it, with the latest progress; notify hears every event in
    log order."""
    running.spy.hold = asyncio.Event()
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    running.reporter.add(step(2), progress=(2, 4))
    running.reporter.add(step(3), progress=(3, 4))
    done = JobSucceeded(result={"images": []})
    finishing = asyncio.create_task(running.reporter.finish(done, now=NOW + 1))
    running.spy.hold.set()
    assert await finishing is True
    assert running.sent() == [
        ("report", [step(1)], (1, 4)),
        ("finish", [step(2), step(3), done], (3, 4)),
    ]
    assert await running.log() == [step(1), step(2), step(3), done]
    assert running.told() == [step(1), step(2), step(3), done]
    job = await running.store.get(running.reporter.job.id)
    assert job.status is JobStatus.DONE and job.result == {"images": []}
    assert (job.progress_step, job.progress_total) == (3, 4)


async def test_flush_writes_everything_and_waits(running) -> None:
    """flush (before a retry) waits for the write in flight, then writes what gathered,
    progress included."""
    running.spy.hold = asyncio.Event()
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    running.reporter.add(NOTE, progress=(2, 4))
    flushing = asyncio.create_task(running.reporter.flush())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not flushing.done() and len(running.spy.writes) == 1  # no write beside another
    running.spy.hold.set()
    await flushing
    assert running.sent() == [
        ("report", [step(1)], (1, 4)),
        ("report", [NOTE], (2, 4)),
    ]
    assert await running.log() == [step(1), NOTE]
    assert running.told() == [step(1), NOTE]
    job = await running.store.get(running.reporter.job.id)
    assert (job.progress_step, job.progress_total) == (2, 4)


async def test_a_write_failing_under_flush_leaves_the_reporter_writing(running) -> None:
    """flush raises the failed write's error; events added after it still go out at once."""
    running.spy.hold, running.spy.fail = asyncio.Event(), ConnectionError("store down")
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    flushing = asyncio.create_task(running.reporter.flush())
    await asyncio.sleep(0)
    running.spy.hold.set()
    with pytest.raises(ConnectionError, match="store down"):
        await flushing
    running.spy.hold = None
    running.reporter.add(step(2), progress=(2, 4))
    await running.spy.until(lambda: running.notified)
    assert running.sent()[1:] == [("report", [step(2)], (2, 4))]
    assert await running.log() == [step(2)]


@pytest.mark.parametrize("taken", ["recovered", "claimed_by_another"])
async def test_a_worker_that_lost_the_job_writes_nothing(running, taken) -> None:
    """Once the job is no longer the worker's, report answers False: nothing is logged and
    notify is not told; finish answers False and leaves the job as it is."""
    await running.store.recover(now=NOW + 100, visibility_timeout=10)
    if taken == "claimed_by_another":
        assert (await running.store.claim("w2", now=NOW + 100)).worker_id == "w2"
    running.reporter.add(step(1), progress=(1, 4))
    await running.reporter.flush()
    assert [w.owned for w in running.spy.writes] == [False]
    gone = JobSucceeded(result={})
    assert await running.reporter.finish(gone, now=NOW + 101) is False
    log = await running.log()
    assert step(1) not in log and gone not in log
    assert running.notified == []
    assert (await running.store.get(running.reporter.job.id)).status is not JobStatus.DONE


async def test_a_failed_write_is_raised_to_the_next_add_once(running) -> None:
    """The store's error surfaces on the next add (that event is not queued), once; the
    reporter then writes on as before."""
    running.spy.fail = ConnectionError("store down")
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    await asyncio.sleep(0)  # the writer task ends with the error
    with pytest.raises(ConnectionError, match="store down"):
        running.reporter.add(step(2), progress=(2, 4))
    running.reporter.add(step(3), progress=(3, 4))
    await running.spy.until(lambda: running.notified)
    assert running.sent()[1:] == [("report", [step(3)], (3, 4))]
    assert await running.log() == [step(3)] and running.told() == [step(3)]


async def test_a_failed_write_is_raised_to_finish_once(running) -> None:
    """A write failing while finish waits for it makes finish raise, once; events gathered
    behind it are kept, and a second finish logs them with the terminal event."""
    running.spy.hold, running.spy.fail = asyncio.Event(), ConnectionError("store down")
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    running.reporter.add(step(2), progress=(2, 4))
    finishing = asyncio.create_task(running.reporter.finish(DONE, now=NOW + 1))
    running.spy.hold.set()
    with pytest.raises(ConnectionError, match="store down"):
        await finishing
    assert await running.reporter.finish(DONE, now=NOW + 1)
    assert running.sent()[1:] == [("finish", [step(2), DONE], (2, 4))]
    assert await running.log() == [step(2), DONE]


async def test_close_cancels_a_write_in_flight(running) -> None:
    """close() stops the write still in flight, quietly: it never lands, nobody is told."""
    running.spy.hold = asyncio.Event()
    running.reporter.add(step(1), progress=(1, 4))
    await running.spy.until(lambda: running.spy.writes)
    running.reporter.close()
    running.spy.hold.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert running.spy.writes[0].cancelled and running.spy.writes[0].owned is None
    assert await running.log() == [] and running.notified == []
