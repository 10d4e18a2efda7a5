"""Which processes a pod runs, in which order, on which ports, with which environment.

Derived from the settings and the service table (`easel.compose.services`) only, so a
service added to `SERVICES` joins the pod without a change here. Order: ComfyUI (only when
a command to start it is configured), the services with what they need first, the job
workers, the gateway last.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from easel.compose.services import GATEWAY, SERVICES, ServiceSpec, dependency_order
from easel.compose.settings import EaselSettings

COMFYUI = "comfyui"
WORKER = "worker"
HEALTH_PATH = "/api/health"
LOOPBACK = "127.0.0.1"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 (bind addresses we connect to as loopback)


class PlanError(ValueError):
    """The pod settings name something that does not exist."""


@dataclass(frozen=True)
class PodProcess:
    """One process of the pod."""

    name: str  # as typed in `easel logs NAME` and used for its files: image-utils, worker-1
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # on top of this environment
    host: str | None = None  # where to reach it (a loopback address for a wildcard bind)
    port: int | None = None
    health_url: str | None = None  # None: alive is all we can know (workers)


def build_plan(
    settings: EaselSettings, *, python: str = sys.executable, internal_token: str | None = None
) -> list[PodProcess]:
    """`internal_token`: the one every easel process of the pod is given (services,
    workers, gateway; not ComfyUI); `easel up` passes the pod's (`internal_token.py`)."""
    pod = settings.pod
    selected = selected_services(pod.pod_services)
    try:
        specs = dependency_order(s for s in SERVICES if s.name in selected)
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    ports = {spec.name: service_port(settings, spec) for spec in specs}
    hosts = {spec.name: bind_host(settings, spec.name) for spec in specs}
    # Every process learns where every pod service is: the gateway routes to them, the job
    # manager and workers call generation by URL instead of loading a second model copy.
    # And all hold the same internal token, so the services answer only the pod's own.
    common = {
        f"EASEL_{spec.name.upper()}_URL": _url(hosts[spec.name], ports[spec.name]) for spec in specs
    }
    if internal_token is not None:
        common["EASEL_INTERNAL_TOKEN"] = internal_token
    easel = (python, "-m", "easel")
    plan: list[PodProcess] = []
    if pod.comfyui_command:
        plan.append(comfyui_process(pod.comfyui_command, settings.generation.comfyui_urls[0]))
    for spec in specs:
        env = {k: v for k, v in common.items() if k != f"EASEL_{spec.name.upper()}_URL"}
        if spec.name == "job_manager" and pod.pod_workers:
            env["EASEL_JOBS_IN_PROCESS_WORKER"] = "false"  # the worker processes run jobs
        plan.append(_server(easel, spec.cli_name, hosts[spec.name], ports[spec.name], env))
    for index in range(1, pod.pod_workers + 1):
        plan.append(PodProcess(f"{WORKER}-{index}", (*easel, "worker"), env=common))
    if GATEWAY in selected:
        host = bind_host(settings, GATEWAY)
        port = pod.pod_ports.get(GATEWAY, settings.gateway.port)
        plan.append(_server(easel, GATEWAY, host, port, common))
    return plan


def _server(
    easel: tuple[str, ...], target: str, host: str, port: int, env: Mapping[str, str]
) -> PodProcess:
    return PodProcess(
        name=target,
        argv=(*easel, "serve", target, "--host", host, "--port", str(port)),
        env=env,
        host=_reachable(host),
        port=port,
        health_url=_url(host, port) + HEALTH_PATH,
    )


def comfyui_process(command: str, api_url: str) -> PodProcess:
    parts = urlsplit(api_url)
    return PodProcess(
        name=COMFYUI,
        argv=tuple(shlex.split(command)),
        host=parts.hostname or LOOPBACK,
        port=parts.port or 8188,
        health_url=f"{api_url.rstrip('/')}/system_stats",
    )


def selected_services(names: tuple[str, ...]) -> set[str]:
    """Settings names of the chosen services, plus `gateway` when chosen."""
    known = {GATEWAY: GATEWAY}
    known |= {typed: s.name for s in SERVICES for typed in (s.name, s.cli_name, *s.aliases)}
    if "all" in names:
        return set(known.values())
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        problem = f"unknown {', '.join(map(repr, unknown))}" if unknown else "empty"
        choices = ", ".join(sorted({GATEWAY, *(s.cli_name for s in SERVICES)}))
        raise PlanError(f"EASEL_POD_SERVICES: {problem}; choose from all, {choices}")
    return {known[name] for name in names}


def service_port(settings: EaselSettings, spec: ServiceSpec) -> int:
    for key in (spec.cli_name, spec.name, *spec.aliases):
        if key in settings.pod.pod_ports:
            return settings.pod.pod_ports[key]
    if spec.name == "generation":  # compat: the first version's GPU_SERVER_PORT
        return settings.generation.generation_port
    return spec.default_port


def bind_host(settings: EaselSettings, name: str) -> str:
    """The gateway is the one public entry (EASEL_HOST); generation listens where the first
    version's GPU service did (GPU_SERVER_HOST); the other services only on loopback."""
    if name == GATEWAY:
        return settings.gateway.host
    return settings.generation.generation_host if name == "generation" else LOOPBACK


def _reachable(host: str) -> str:
    return LOOPBACK if host in WILDCARD_HOSTS else host


def _url(bind: str, port: int) -> str:
    host = _reachable(bind)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def process_name(name: str) -> str:
    """The process name of a service named in any accepted spelling (`job_manager`,
    `jobs` -> `job-manager`); other names (gateway, worker-1) as they are."""
    return next((s.cli_name for s in SERVICES if s.answers_to(name)), name)
