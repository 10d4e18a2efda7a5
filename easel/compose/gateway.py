"""The gateway process: the gateway with every service that has no URL built in-process
(all of them for `easel serve all`), and the others reached by URL."""

from __future__ import annotations

from fastapi import FastAPI

from easel.compose.apps import build_app
from easel.compose.services import SERVICES, dependency_order
from easel.compose.settings import EaselSettings
from easel.core.clients import ClientOpener, in_process
from easel.core.internal_guard import configured_token
from easel.gateway.app import create_app as create_gateway_app
from easel.gateway.upstream import UpstreamService


def create_gateway(settings: EaselSettings) -> FastAPI:
    upstreams: list[UpstreamService] = []
    in_process_apps: dict[str, FastAPI] = {}
    token = configured_token(settings.shared)
    for spec in dependency_order(SERVICES):
        endpoint = settings.topology.endpoint(
            spec.name, default_timeout=settings.gateway.request_timeout
        )
        if not endpoint.in_process:
            # Built from the same code version only to read its OpenAPI document.
            upstreams.append(
                UpstreamService(
                    endpoint=endpoint,
                    prefixes=spec.prefixes,
                    openapi=lambda spec=spec: build_app(spec, settings).openapi(),  # type: ignore[misc]
                )
            )
            continue
        # An in-process service calls the ones it needs that run here too through their
        # app in this process (started before it): one model copy, not two.
        links: dict[str, ClientOpener] = {
            need: in_process(in_process_apps[need], need, token=token)
            for need in spec.needs
            if need in in_process_apps
        }
        app = build_app(spec, settings, **links)
        in_process_apps[spec.name] = app
        upstreams.append(
            UpstreamService(endpoint=endpoint, prefixes=spec.prefixes, openapi=app.openapi, app=app)
        )
    return create_gateway_app(settings.gateway, upstreams)
