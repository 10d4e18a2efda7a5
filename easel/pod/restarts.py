"""When the watchdog starts a crashed pod process again, and when it stops trying.

A process failed at start-up when it exited before it answered its health endpoint (one
without an endpoint, a worker: within the start-up window of its start). Each failure at
start-up in a row doubles the wait before the next start; a crash after a good start waits
the base backoff. After `max_failures` failures at start-up in a row it is not started
again: something about it is broken, and restarting it would only fill its log.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from easel.pod.settings import PodSettings


@dataclass(frozen=True)
class RestartPolicy:
    backoff_s: float
    backoff_max_s: float
    max_failures: int
    startup_window_s: float

    @classmethod
    def from_settings(cls, pod: PodSettings) -> RestartPolicy:
        return cls(
            backoff_s=pod.pod_restart_backoff,
            backoff_max_s=pod.pod_restart_backoff_max,
            max_failures=pod.pod_restart_max_failures,
            startup_window_s=pod.pod_startup_window,
        )

    def delay(self, failures: int) -> float:
        """Seconds before the next start, after `failures` failures at start-up in a row."""
        return float(min(self.backoff_s * 2**failures, self.backoff_max_s))

    def gives_up(self, failures: int) -> bool:
        return failures >= self.max_failures


def describe_exit(code: int | None) -> str:
    """A Popen return code in words: `exit code 3`, `SIGKILL`; None: not known (a process
    this watchdog did not start, so cannot wait for)."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
