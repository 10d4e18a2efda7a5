"""Log tails and following a log as it grows."""

from __future__ import annotations

from pathlib import Path

from easel.pod import logs


def test_tail_reads_the_last_lines_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_bytes(b"".join(b"line %d %s\n" % (i, b"x" * 1000) for i in range(200)))
    last = logs.tail(path, 3).splitlines()
    assert [line.split()[1] for line in last] == ["197", "198", "199"]
    assert len(logs.tail(path, 500).splitlines()) == 200
    assert logs.tail(path, 0) == ""
    assert logs.tail(tmp_path / "missing.log", 5) == ""


def test_follow_prints_whole_new_lines_and_rereads_a_truncated_log(tmp_path: Path) -> None:
    path = tmp_path / "jobs.log"
    path.write_text("old\n")
    writes: list[tuple[str, str]] = []

    def append(text: str) -> None:
        with path.open("a") as file:
            file.write(text)

    steps = iter(
        [
            lambda: append("new 1\npartial"),
            lambda: append(" line\n"),
            lambda: path.write_text("rotated\n"),
        ]
    )

    def keep_going() -> bool:
        step = next(steps, None)
        if step is not None:
            step()
        return step is not None

    logs.follow(
        {"jobs": path},
        lambda name, text: writes.append((name, text)),
        poll_interval=0,
        keep_going=keep_going,
    )
    assert writes == [("jobs", "new 1\n"), ("jobs", "partial line\n"), ("jobs", "rotated\n")]
