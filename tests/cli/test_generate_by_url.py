"""`easel generate --by-url`: the server answers with links (`output: url`) and the CLI
writes the same files it writes from inline images, streamed or as a job."""

from __future__ import annotations

from tests.cli.conftest import Easel


def test_generate_by_url_writes_the_same_files(easel: Easel) -> None:
    common = ("a quiet lake", "--steps", "2", "--seed", "4", "-n", "2")
    inline = easel.run("generate", *common, "-o", "inline.png")
    linked = easel.run("generate", *common, "--by-url", "-o", "linked.png")
    job = easel.run("generate", *common, "--by-url", "--async", "-o", "job.png")
    for made in (inline, linked, job):
        assert made.exit_code == 0, made.output
    assert linked.stdout.splitlines()[:2] == ["linked.png", "linked-1.png"]
    for suffix in ("", "-1"):
        data = (easel.cwd / f"inline{suffix}.png").read_bytes()
        assert (easel.cwd / f"linked{suffix}.png").read_bytes() == data
        assert (easel.cwd / f"job{suffix}.png").read_bytes() == data
