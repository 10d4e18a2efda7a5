"""How a client command reaches the server: the options every one of them takes (--url,
--api-key, --timeout) and the decorator that adds them, opens the SDK's `Client` and
reports its failures (easel.cli.client.failures)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Concatenate, ParamSpec

import httpx
import typer

from easel.cli.client.failures import EXIT_CODES, reported
from easel.client import Client
from easel.client.config import DEFAULT_URL

P = ParamSpec("P")
CommandBody = Callable[Concatenate[Client, P], None]
SERVER = "Server"  # the help panel of the connection's options

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="EASEL_URL", help="The gateway's base URL.", rich_help_panel=SERVER
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="EASEL_API_KEY",
        help="An API key, where the server has keys on.",
        rich_help_panel=SERVER,
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.1, help="Seconds to wait for each answer.", rich_help_panel=SERVER
    ),
]
DEFAULT_TIMEOUT = 300.0
CONNECT_TIMEOUT = 10.0  # a server that is there answers a connect at once

_CONNECTION = (
    inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_URL, annotation=Url),
    inspect.Parameter("api_key", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ApiKey),
    inspect.Parameter(
        "timeout", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_TIMEOUT, annotation=Timeout
    ),
)


def with_client(body: CommandBody[P]) -> Callable[..., None]:
    """`body(client, ...)` as a command: its own options plus the connection's; every
    failure one line on stderr and an exit code, never a traceback. (typer reads the
    options from the signature: the command's is the body's, less `client`, plus these.)"""
    own = list(inspect.signature(body, eval_str=True).parameters.values())[1:]

    @functools.wraps(body)
    def command(*args: Any, url: str, api_key: str | None, timeout: float, **kwargs: Any) -> None:
        with reported(url, with_key=bool(api_key)):
            limits = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
            with Client(url, api_key=api_key, timeout=limits) as client:
                body(client, *args, **kwargs)

    signature = inspect.Signature([*own, *_CONNECTION])
    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return command


def client_command(
    app: typer.Typer, name: str | None = None
) -> Callable[[CommandBody[P]], CommandBody[P]]:
    """Register `body` on `app` as a command that talks to the server (see with_client);
    the exit codes end its help."""

    def register(body: CommandBody[P]) -> CommandBody[P]:
        app.command(name, epilog=EXIT_CODES)(with_client(body))
        return body

    return register
