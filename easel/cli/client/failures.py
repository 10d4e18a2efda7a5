"""Every way a client command fails: one line on stderr that says what to do, and an exit
code of its kind (EXIT_CODES, which ends each command's help); never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.markup import escape

from easel.cli.common import err_console
from easel.client import errors

SERVER_ERROR, USAGE_ERROR = 1, 2
INTERRUPTED = 130

EXIT_CODES = (
    "Exit codes: 0 done; 1 the server refused or failed the request (an error answer, a "
    "failed or cancelled job); 2 bad usage or input file, no server at --url, or no answer "
    "in time; 130 interrupted."
)


class UsageProblem(Exception):
    """What the user asked cannot be done as given (exit 2); the message says what to do."""


class ServerProblem(Exception):
    """The server's answer is not what the command needs (exit 1)."""


def fail(message: str, code: int) -> NoReturn:
    err_console.print(f"[red]easel:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def _api_message(exc: errors.ApiError, *, with_key: bool) -> str:
    head = f"{exc.status}: {exc.message}"
    if exc.status == 401 and not with_key:
        head = "401: this server needs an API key: pass --api-key or set EASEL_API_KEY"
    elif exc.status == 401:
        head += ": check --api-key (or EASEL_API_KEY)"
    elif exc.status == 403:
        head += ": use a key with the scope this command needs"
    elif isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
        head += f": try again in {exc.retry_after:g}s"
    elif isinstance(exc, errors.Unavailable):
        head += ": `easel health` shows which service is down"
    return head if exc.request_id is None else f"{head} (request id {exc.request_id})"


def _job_failure(exc: errors.JobFailed) -> str:
    return f"the job failed: {exc.code}: {exc.message}"


@contextmanager
def reported(url: str, *, with_key: bool) -> Iterator[None]:
    """Run a command's body; its failures become one line on stderr and the exit code."""
    try:
        yield
    except UsageProblem as exc:
        fail(str(exc), USAGE_ERROR)
    except ServerProblem as exc:
        fail(str(exc), SERVER_ERROR)
    except errors.JobFailed as exc:
        fail(_job_failure(exc), SERVER_ERROR)
    except errors.ApiError as exc:
        fail(_api_message(exc, with_key=with_key), SERVER_ERROR)
    except errors.JobCancelled:
        fail("the job was cancelled", SERVER_ERROR)
    except errors.WaitTimeout as exc:
        fail(f"{exc}: pass a larger --timeout, or `easel jobs wait` it later", USAGE_ERROR)
    except errors.ConnectionFailed:
        fail(f"cannot reach {url}: is `easel serve` running? (else pass --url or set "
             "EASEL_URL)", USAGE_ERROR)  # fmt: skip
    except errors.NetworkError as exc:
        fail(f"{exc}: try again, or pass a larger --timeout", USAGE_ERROR)
    except KeyboardInterrupt:
        fail("interrupted", INTERRUPTED)
