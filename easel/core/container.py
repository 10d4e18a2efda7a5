"""One typed container of shared objects per app, set by its lifespan, read by routes.

Routes declare `Annotated[MyContainer, Depends(container_of(MyContainer))]` instead of
reaching into untyped `app.state` attributes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import FastAPI, Request
from starlette.types import Scope

T = TypeVar("T")


def install_container(app: FastAPI, container: object) -> None:
    app.state.container = container


def container_in(scope: Scope, kind: type[T]) -> T:
    """The container of the app serving `scope` (pure ASGI code, which has no Request)."""
    container = getattr(scope["app"].state, "container", None)
    if not isinstance(container, kind):
        raise RuntimeError(f"{kind.__name__} missing: the app's lifespan did not run")
    return container


def container_of(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    # Async, though it awaits nothing: FastAPI runs a plain function dependency in its
    # thread pool, a thread hop on every request of every route that reads its container.
    async def get(request: Request) -> T:
        return container_in(request.scope, kind)

    get.__name__ = f"get_{kind.__name__}"
    return get
