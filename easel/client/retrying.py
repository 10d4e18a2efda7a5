"""When and how long to retry, with tenacity: a 429 or a 503 after the server's
`Retry-After` (capped), a refused connection a couple of times after a short pause; never
another error answer. Both clients use `retry_policy` (tenacity's `Retrying` and
`AsyncRetrying` take the same arguments)."""

from __future__ import annotations

from typing import Any

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from easel.client.errors import ApiError, ConnectionFailed

RETRY_STATUSES = frozenset({429, 503})
# A server that is not up is rarely up a second later: try it again only a little.
CONNECT_RETRIES = 2


def is_retryable(exc: BaseException) -> bool:
    """A 429 or 503 answer, or a connection that could not be made (nothing was sent)."""
    if isinstance(exc, ApiError):
        return exc.status in RETRY_STATUSES
    return isinstance(exc, ConnectionFailed)


def _last_error(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None else None


class wait_retry_after(wait_base):  # noqa: N801 - named as tenacity names its waits
    """The last answer's `Retry-After`, at most `cap` seconds; `fallback` without one."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        error = _last_error(retry_state)
        if isinstance(error, ApiError) and error.retry_after is not None:
            return min(error.retry_after, self.cap)
        return min(self.fallback(retry_state), self.cap)


class stop_connecting_after(stop_base):  # noqa: N801
    """Stop once a connection has failed `attempts` times in a row."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _last_error(retry_state)
        return isinstance(error, ConnectionFailed) and retry_state.attempt_number >= self.attempts


def retry_policy(retries: int, *, max_wait: float) -> dict[str, Any]:
    """Keyword arguments of tenacity's `Retrying`/`AsyncRetrying`: up to `retries` retries
    (0: none), each wait at most `max_wait` seconds; the last error is raised as itself."""
    return {
        "stop": stop_after_attempt(retries + 1) | stop_connecting_after(CONNECT_RETRIES + 1),
        "retry": retry_if_exception(is_retryable),
        "wait": wait_retry_after(wait_exponential(multiplier=0.25, max=max_wait), max_wait),
        "reraise": True,
    }
