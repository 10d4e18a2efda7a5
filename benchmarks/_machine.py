"""The machine under a benchmark: what it is, waiting until it is quiet, and how much CPU
other processes took while we measured (on a shared 2-core machine, the biggest noise)."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

OTHER_WORK = ("benchmarks/", "pytest")  # other benchmarks and test runs share our cores
INTERFERENCE_WARN = 0.05
QUIET_SHARE = 0.15  # below this share of the CPU in use, the machine counts as quiet


def machine_line(*, with_torch: bool = True) -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    extra = ""
    if with_torch:
        import torch

        extra = f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {extra}load average before the run: {load}"
    )


def other_work() -> list[str]:
    """Command lines of other benchmarks and test runs going on now (not this process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(name in cmdline for name in OTHER_WORK):
            found.append(f"{entry.name}: {cmdline.strip()[:100]}")
    return found


def busy_share(seconds: float = 2.0) -> float:
    """The share of the machine's CPU in use over the next `seconds`."""
    before, started = busy_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (busy_cpu_seconds() - before) / ((time.monotonic() - started) * (os.cpu_count() or 1))


def wait_for_quiet_machine(max_wait_s: float, console: Console) -> None:
    """Wait while another benchmark runs or the machine is busy (tests, builds): on a small
    machine they would take the cores the service needs, and the figures would be theirs."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        busy = other_work()
        share = busy_share()
        if not busy and share < QUIET_SHARE:
            return
        reason = busy[0] if busy else f"the machine is {share:.0%} busy"
        with console.status(f"waiting for a quiet machine: {reason}"):
            time.sleep(3)
    console.print(f"[red]the machine is still busy after {max_wait_s:.0f} s; measuring anyway[/]")


def busy_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far, from /proc/stat (0 where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class CpuWatch:
    """How much of the machine processes other than ours (this one, the servers) used."""

    pids: list[int]
    started: float = field(default_factory=time.monotonic)
    busy: float = field(default_factory=busy_cpu_seconds)
    ours: float = 0.0

    def __post_init__(self) -> None:
        self.ours = self._ours()

    def _ours(self) -> float:
        own = time.process_time()
        return own + sum(_process_cpu_seconds(pid) for pid in self.pids)

    def report(self) -> tuple[float, str]:
        wall = time.monotonic() - self.started
        others = max(0.0, (busy_cpu_seconds() - self.busy) - (self._ours() - self.ours))
        share = others / (wall * (os.cpu_count() or 1))
        line = (
            f"other processes used {others:.1f} CPU-s during the run ({share:.0%} of the machine)"
        )
        if share > INTERFERENCE_WARN:
            line += ": these figures are disturbed, run again on a quiet machine"
        return share, line
