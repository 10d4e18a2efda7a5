"""Every app's API pages (`/docs`, `/redoc`) with no network: their scripts and styles are
served by the app itself, from the `fastapi-offline` package (FastAPI's own pages load them
from a public CDN), and a Content-Security-Policy keeps the page on this server (ReDoc's
sidebar would fetch its maker's logo from another host)."""

from __future__ import annotations

import inspect
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

# Where the pages' assets are served; the gateway keeps it public (route_classes.PAGE).
DOCS_ASSETS = "/static/docs"
# Swagger UI would send the document to swagger.io's online validator for its badge.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None, "tryItOutEnabled": True}
# The pages' inline start-up scripts and styles stay allowed; ReDoc's search runs in a
# blob: worker.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def _assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _kept_here(page: HTMLResponse) -> HTMLResponse:
    """The page with its policy as a meta tag: the security headers' own CSP (frame
    ancestors) replaces any an app sets, and both hold when one is in the page."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{PAGE_POLICY}">'
    html = bytes(page.body).decode().replace("<head>", f"<head>\n{meta}", 1)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


# FastAPI's own OpenTelemetry (from 0.16x) would trace each request a second time beside
# easel's (`easel.core.telemetry` instruments every app when EASEL_OTEL_ENDPOINT is set),
# and it checks for configured providers on every request (~5% of the gateway's CPU on a
# small proxied request). Older FastAPI has no such parameter.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def offline_docs_app(**fastapi: Any) -> FastAPI:
    """A FastAPI app (its arguments as FastAPI's) whose API pages need no network."""
    app = FastAPI(**fastapi, **_NO_NATIVE_TELEMETRY, docs_url=None, redoc_url=None)
    app.mount(DOCS_ASSETS, StaticFiles(directory=_assets()), name="docs-assets")

    def here(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{name}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _kept_here(
            get_swagger_ui_html(
                openapi_url=here(request, str(app.openapi_url)),
                title=f"{app.title} - Swagger UI",
                swagger_js_url=here(request, f"{DOCS_ASSETS}/swagger-ui-bundle.js"),
                swagger_css_url=here(request, f"{DOCS_ASSETS}/swagger-ui.css"),
                swagger_favicon_url=here(request, f"{DOCS_ASSETS}/favicon.png"),
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return _kept_here(
            get_redoc_html(
                openapi_url=here(request, str(app.openapi_url)),
                title=f"{app.title} - ReDoc",
                redoc_js_url=here(request, f"{DOCS_ASSETS}/redoc.standalone.js"),
                redoc_favicon_url=here(request, f"{DOCS_ASSETS}/favicon.png"),
                with_google_fonts=False,
            )
        )

    return app
