"""The ComfyUI engine: requests become parameter values of a named workflow, run on a
ComfyUI server over HTTP + WebSocket.

Which workflow: the request's `model` names one, or its `mode` picks one through
`COMFYUI_WORKFLOWS`. The request's standard fields (prompt, negative_prompt, width, height,
steps, guidance_scale, seed, input_image, mask_image) fill the workflow's parameters of the
same names (a standard field the workflow does not declare is ignored, with a warning);
`extra_params` fills its other parameters. All are checked against the workflow's
declaration in `prepare`, before anything is sent (422 naming the field).

Batching: requests that resolve to the same workflow and the same parameter values (all
but prompt, seed and images) share a call; the call queues one prompt per image (see
run.py). Calls that cannot share run at once, up to `COMFYUI_MAX_QUEUED` of them, so
ComfyUI's queue holds the next call's prompts when one ends. Previews (ComfyUI's binary
frames) are not forwarded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from easel.core.errors import Conflict, InvalidInput, NotFound
from easel.core.generation_api import GenerationRequest
from easel.generation.engines.base import (
    CallKey,
    CancelledFn,
    EngineCall,
    EngineCapabilities,
    EngineHealth,
    EngineOutput,
    ModelListing,
    Prepared,
    ProgressFn,
    WorkflowListing,
)
from easel.generation.engines.comfyui.choices import map_choices
from easel.generation.engines.comfyui.client import ComfyUIClient
from easel.generation.engines.comfyui.run import CallRun, RunOptions
from easel.generation.engines.comfyui.servers import ComfyUIServers
from easel.generation.engines.comfyui.workflows import (
    DEFAULT_MODEL_FILES,
    EXAMPLES,
    WorkflowCatalogue,
)
from easel.generation.settings import GenerationSettings

log = logging.getLogger("easel.generation.comfyui")

STANDARD = ("prompt", "negative_prompt", "width", "height", "steps", "guidance_scale")
IN_KEY = ("width", "height", "steps", "guidance_scale")  # CallKey fields of their own
PER_ITEM = ("prompt", "negative_prompt")  # vary within a call
RUNTIME = frozenset({"seed", "input_image", "mask_image"})  # supplied per image when run
TOP_LEVEL = frozenset(STANDARD) | RUNTIME


def field_of(name: str) -> str:
    """The request field that carries workflow parameter `name`."""
    return name if name in TOP_LEVEL else f"extra_params.{name}"


class ComfyUIEngine:
    name = "comfyui"

    def __init__(
        self,
        *,
        servers: ComfyUIServers,
        catalogue: WorkflowCatalogue,
        mode_workflows: dict[str, str],
        options: RunOptions,
        max_queued: int,
    ) -> None:
        # Each workflow declares the prompt and images it needs (checked in `prepare`);
        # ComfyUI's previews (binary frames) are not forwarded. ComfyUI has its own queue:
        # up to `max_queued` calls per server run at once, so the next prompt is already
        # queued there when one ends. Calls never share state (each follows its own prompt
        # ids), so cancelling one never touches another's prompts.
        self.capabilities = EngineCapabilities(
            validates_inputs=True,
            workflows=True,
            previews=False,
            concurrent_calls=max_queued * len(servers.clients),
        )
        self.max_queued = max_queued
        self.servers = servers
        self.catalogue = catalogue
        self.mode_workflows = mode_workflows
        self.options = options

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> ComfyUIEngine:
        folders: list[Path] = [EXAMPLES] if settings.comfyui_example_workflows else []
        folders.append(settings.workflows_path)
        catalogue = WorkflowCatalogue.load(
            folders, {**DEFAULT_MODEL_FILES, **settings.comfyui_model_files}
        )
        clients = [
            ComfyUIClient(
                url,
                timeout=settings.comfyui_timeout,
                connect_timeout=settings.connect_timeout,
                backoff=settings.comfyui_reconnect_backoff,
                backoff_max=settings.comfyui_reconnect_max,
            )
            for url in settings.comfyui_urls
        ]
        options = RunOptions(
            poll_interval=settings.comfyui_poll_interval,
            prompt_timeout=settings.comfyui_prompt_timeout,
            stop_timeout=settings.connect_timeout,
            queue_timeout=settings.comfyui_queue_timeout,
        )
        return cls(
            servers=ComfyUIServers(clients),
            catalogue=catalogue,
            mode_workflows=dict(settings.comfyui_workflows),
            options=options,
            max_queued=settings.comfyui_max_queued,
        )

    async def start(self) -> None:
        missing = {
            m: w for m, w in self.mode_workflows.items() if w not in self.catalogue.workflows
        }
        if missing:
            log.warning("modes mapped to unknown workflows: %s", missing)
        await self.servers.start()

    async def close(self) -> None:
        await self.servers.close()

    # ---- requests ------------------------------------------------------------------------
    def prepare(
        self, request: GenerationRequest, input_size: tuple[int, int] | None = None
    ) -> Prepared:
        mode = request.resolved_mode
        if request.model is not None:
            workflow = self.catalogue.get(request.model, "model")
        elif mode.value in self.mode_workflows:
            workflow = self.catalogue.get(self.mode_workflows[mode.value], "mode")
        else:
            raise InvalidInput.field("mode", f"no workflow is configured for {mode}")
        given: dict[str, Any] = {}
        ignored = []
        for name in STANDARD:
            value = getattr(request, name)
            if value is None or (name == "prompt" and not value.strip()):
                continue
            if name in workflow.parameters:
                given[name] = value
            else:  # as diffusers families ignore what they cannot use: said, not refused
                ignored.append(name)
        for name, value in request.extra_params.items():
            if name in TOP_LEVEL:
                raise InvalidInput.field(f"extra_params.{name}", f"use the request field {name!r}")
            given[name] = value
        # `scheduler` and `loras` onto the parameters the workflow declares for them.
        choices = map_choices(request, workflow)
        given.update(choices.values)
        for image in ("input_image", "mask_image"):
            declared = workflow.parameters.get(image)
            sent = getattr(request, image) is not None
            if sent and declared is None:
                raise InvalidInput.field(image, f"workflow {workflow.name!r} takes no {image}")
            if not sent and declared is not None and declared.is_required:
                raise InvalidInput.field(image, f"required by workflow {workflow.name!r}")
        resolved = workflow.resolve(given, choices.field_of(field_of), runtime=RUNTIME)
        values = resolved.values
        width = int(values.get("width") or (input_size[0] if input_size else 0))
        height = int(values.get("height") or (input_size[1] if input_size else 0))
        extra = {k: v for k, v in values.items() if k not in (*IN_KEY, *PER_ITEM)}
        key = CallKey(
            model=workflow.name,
            mode=mode,
            width=width,
            height=height,
            steps=int(values.get("steps") or 0),
            guidance_scale=float(values.get("guidance_scale") or 0.0),
            extra=tuple(sorted(extra.items())),
            loras=choices.loras,
            scheduler=choices.scheduler,
        )
        warnings = [f"workflow {workflow.name!r} ignores {name}" for name in ignored]
        return Prepared(
            key=key,
            warnings=(*resolved.warnings, *warnings),
            seeds=workflow.seeds(),
            seeds_of=f"workflow {workflow.name!r}",
        )

    async def generate(
        self, call: EngineCall, progress: ProgressFn, cancelled: CancelledFn
    ) -> EngineOutput:
        workflow = self.catalogue.get(call.key.model, "model")
        key = call.key
        shared: dict[str, Any] = dict(key.extra)
        for name in IN_KEY:
            if name in workflow.parameters:
                shared[name] = getattr(key, name)
        values = []
        for item in call.items:
            own = dict(shared)
            for name, value in (("prompt", item.prompt), ("negative_prompt", item.negative_prompt)):
                param = workflow.parameters.get(name)
                if param is not None:
                    own[name] = value if value else param.default
            values.append({k: v for k, v in own.items() if v is not None})
        async with self.servers.lease() as client:
            run = CallRun(
                client=client,
                workflow=workflow,
                call=call,
                values=values,
                field_of=field_of,
                options=self.options,
            )
            return await run.run(progress, cancelled)

    def describe_models(self) -> ModelListing:
        """ComfyUI's models are its workflows (a request names one in `model`); each runs
        on the ComfyUI server, so none is loaded here."""
        modes: dict[str, list[str]] = {}
        for mode, workflow in sorted(self.mode_workflows.items()):
            modes.setdefault(workflow, []).append(mode)
        workflows = self.catalogue.workflows
        return ModelListing(
            default_model=None,
            models=[
                {
                    "name": name,
                    "family": "comfyui",
                    "description": workflows[name].declaration.description,
                    "modes": modes.get(name, []),
                    "loaded": False,
                    "default": False,
                }
                for name in sorted(workflows)
            ],
        )

    def is_loaded(self, model: str) -> bool:
        return True  # the ComfyUI server loads what a workflow needs, unseen from here

    async def load_model(self, name: str) -> dict[str, Any]:
        return self._unmanaged(name, "load")

    async def unload_model(self, name: str) -> dict[str, Any]:
        return self._unmanaged(name, "unload")

    def _unmanaged(self, name: str, verb: str) -> dict[str, Any]:
        if name not in self.catalogue.workflows:
            raise NotFound(f"no workflow {name!r}", details={"model": name})
        raise Conflict(
            f"the ComfyUI engine cannot {verb} {name!r}: the ComfyUI server loads and "
            "unloads the models its workflows use itself",
            details={"model": name, "engine": "comfyui"},
        )

    def describe_workflows(self) -> WorkflowListing:
        workflows = self.catalogue.workflows
        return WorkflowListing(
            workflows=[workflows[name].describe() for name in sorted(workflows)],
            mode_workflows=dict(self.mode_workflows),
        )

    # ---- health --------------------------------------------------------------------------
    def health(self) -> EngineHealth:
        clients = self.servers.clients
        up = [client for client in clients if client.connected]
        shown = up[0] if up else self.servers.first  # the top-level keys: one server's
        devices = [
            {k: d.get(k) for k in ("name", "type", "index", "vram_total", "vram_free")}
            for client in clients
            for d in (client.system_stats or {}).get("devices") or []
        ]
        detail: dict[str, Any] = {
            "comfyui_available": bool(up),
            "comfyui_url": shown.base_url,
            "comfyui_version": _version(shown),
            "devices": devices,
            "client_id": shown.client_id,
            "max_queued": self.max_queued,
            "servers": [
                {
                    "url": client.base_url,
                    "available": client.connected,
                    "comfyui_version": _version(client),
                    "calls": self.servers.calls[id(client)],
                    "error": None if client.connected else client.last_error,
                }
                for client in clients
            ],
            "workflows": sorted(self.catalogue.workflows),
            "mode_workflows": self.mode_workflows,
        }
        if self.catalogue.errors:
            detail["workflow_errors"] = self.catalogue.errors
        error = None if up else shown.last_error
        if not self.catalogue.workflows:
            error = "no usable workflow: see workflow_errors and WORKFLOWS_PATH"
        return EngineHealth(
            ready=bool(up) and bool(self.catalogue.workflows),
            detail=detail,
            error=error,
            gpu_available=any(d.get("type") == "cuda" for d in devices),
        )


def _version(client: ComfyUIClient) -> Any:
    return ((client.system_stats or {}).get("system") or {}).get("comfyui_version")
