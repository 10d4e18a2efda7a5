"""The restart policy: backoff, giving up, and exits in words."""

from __future__ import annotations

import signal

from easel.pod.restarts import RestartPolicy, describe_exit
from easel.pod.settings import PodSettings


def test_backoff_doubles_with_failures_at_start_up_up_to_its_maximum() -> None:
    policy = RestartPolicy(backoff_s=1, backoff_max_s=5, max_failures=3, startup_window_s=9)
    assert [policy.delay(n) for n in range(5)] == [1, 2, 4, 5, 5]
    assert [policy.gives_up(n) for n in range(5)] == [False, False, False, True, True]


def test_the_policy_comes_from_the_pod_settings() -> None:
    pod = PodSettings(EASEL_POD_RESTART_BACKOFF=0.5, EASEL_POD_RESTART_MAX_FAILURES=2)
    policy = RestartPolicy.from_settings(pod)
    assert (policy.backoff_s, policy.max_failures) == (0.5, 2)
    assert (policy.backoff_max_s, policy.startup_window_s) == (60.0, 30.0)


def test_exits_in_words() -> None:
    assert describe_exit(-signal.SIGKILL) == "SIGKILL"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(None) == "exit status unknown"
    assert describe_exit(-99) == "signal 99"
