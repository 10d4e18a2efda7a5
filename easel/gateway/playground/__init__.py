"""The playground page at `/`: static files (this folder's `index.html` and `static/`),
no build step and no request to another host. EASEL_PLAYGROUND=false leaves it out."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

PAGE_FOLDER = Path(__file__).parent
# The page's own modules, styles and the front-end client (`/static/easel.js`).
STATIC_PATH = "/static"


async def _index(_: Request) -> Response:
    # Revalidated on every load: an upgraded server never serves a stale page.
    return FileResponse(PAGE_FOLDER / "index.html", headers={"Cache-Control": "no-cache"})


def install_playground(app: FastAPI) -> None:
    """`GET /` and `GET /static/...`; after the docs' own assets (`/static/docs`), which
    the app mounted first and so keep their path."""
    app.add_route("/", _index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount(STATIC_PATH, StaticFiles(directory=PAGE_FOLDER / "static"), name="playground")
