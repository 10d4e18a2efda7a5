"""A fake ComfyUI server for tests, faithful to ../shared/comfyui-protocol.md (0.33).

HTTP + websocket on a real port (uvicorn in a thread of the test process), restartable on
the same port; a restart loses the queue and history, as a real one does. What it keeps:

- events go only to the socket whose clientId the prompt was posted with; `status` to all;
- `progress` is throttled (first and final always; between, >= 100 ms and >= 0.5 %);
- `/history/{id}` is `{}` until a run has ended, and is written just *after*
  `execution_success` (as ComfyUI's worker does), then `status`, then `executing null`;
- `POST /prompt` errors are 400 `{error, node_errors}` in ComfyUI's shapes, and `number`
  grows on every post, refused ones too;
- `POST /interrupt {prompt_id}` stops only that prompt if it runs; no body stops whatever
  runs; `POST /queue {delete}` removes pending prompts.

Tests steer it from their thread: `hold()` / `release()` park a KSampler mid-run,
`fail_classes` makes a node class raise, `refuse_ws` / `drop_sockets()` break the
websocket, `restart()`, and they read back `prompts`, `interrupts`, `deletes`, `uploads`.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.support import fake_comfyui_nodes as nodes
from tests.support.servers import free_port

WAIT = 10.0
VERSION = "0.33.0"


@dataclass
class Task:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    interrupted: bool = False

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


class Interrupted(Exception):
    pass


@dataclass
class FakeComfyUI:
    port: int = field(default_factory=free_port)
    checkpoints: list[str] = field(
        default_factory=lambda: [
            "v1-5-pruned-emaonly.safetensors",
            "512-inpainting-ema.safetensors",
        ]
    )
    loras: list[str] = field(default_factory=lambda: ["grain.safetensors", "glow.safetensors"])
    devices: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "name": "cpu",
                "type": "cpu",
                "index": None,
                "vram_total": 25276514304,
                "vram_free": 24120061952,
            }
        ]
    )
    step_delay: float = 0.005
    history_lag: float = 0.02  # history is written just after execution_success
    fail_classes: dict[str, str] = field(default_factory=dict)  # class_type -> message
    refuse_ws: bool = False
    done_marker: bool = True  # False: no `executing` null after a run (not seen in 0.33)
    # read by tests
    prompts: list[dict[str, Any]] = field(default_factory=list)  # accepted POST /prompt bodies
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[list[str]] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    history_reads: list[str] = field(default_factory=list)  # ids of GET /history/{id}
    ws_connects: int = 0

    def __post_init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._held = threading.Event()
        self._reset()

    def _reset(self) -> None:
        self.queue: deque[Task] = deque()
        self.running: Task | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}  # (type, subfolder, name)
        self.sockets: dict[str, WebSocket] = {}
        self.number = 0
        self.counters: dict[str, int] = {}
        self._hold_step: int | None = None
        self.held_task: Task | None = None  # the one waiting at the hold now
        self._gate: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None

    @property
    def is_up(self) -> bool:
        return self._server is not None and self.loop is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- run / restart -------------------------------------------------------------------
    def start(self) -> None:
        self._reset()
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + WAIT
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake ComfyUI did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(WAIT)
        self._server = self._thread = None

    def restart(self) -> None:
        """Like a real restart: the queue, history and sockets are gone."""
        self.stop()
        self.start()

    def _call(self, fn: Any) -> Any:
        """Run `fn()` on the server's loop and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(WAIT)

    # ---- steering from tests -------------------------------------------------------------
    def hold(self, step: int = 1) -> None:
        """The next KSampler steps that reach `step` wait until `release()`."""
        self._held.clear()

        def arm() -> None:
            self._hold_step, self._gate = step, asyncio.Event()

        self._call(arm)

    def is_held(self) -> bool:
        """Whether a KSampler waits at the hold now (for tests that must not block)."""
        return self.held_task is not None

    def wait_held(self) -> Task:
        assert self._held.wait(WAIT), "no KSampler reached the hold"
        assert self.running is not None
        return self.running

    def release(self) -> None:
        def open_gate() -> None:
            if self._gate is not None:
                self._gate.set()
            self._hold_step = self._gate = None

        self._call(open_gate)

    def drop_sockets(self) -> None:
        async def close_all() -> None:
            for socket in list(self.sockets.values()):
                try:
                    await socket.close(code=1001)
                except RuntimeError:
                    pass
            self.sockets.clear()

        self._call(close_all)

    def pending_ids(self) -> list[str]:
        return self._call(lambda: [task.prompt_id for task in self.queue])

    def wait_for(self, predicate: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def entry(self, prompt_id: str) -> dict[str, Any]:
        """The prompt's history entry, once written: ComfyUI writes it just after the end
        event, and a client that saw the whole run on its socket need not wait for it."""
        self.wait_for(lambda: prompt_id in self.history, f"the history entry of {prompt_id}")
        return self.history[prompt_id]

    def queue_direct(self, graph: dict[str, Any], client_id: str) -> str:
        """Post a prompt as another client would (not through easel)."""
        import httpx

        body = {"prompt": graph, "client_id": client_id}
        answer = httpx.post(f"{self.url}/prompt", json=body, timeout=WAIT)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["prompt_id"])

    # ---- inputs --------------------------------------------------------------------------
    def input_names(self) -> list[str]:
        return [
            f"{sub}/{name}" if sub else name for (kind, sub, name) in self.files if kind == "input"
        ]

    def open_input(self, reference: str) -> Image.Image:
        sub, _, name = reference.rpartition("/")
        return Image.open(io.BytesIO(self.files[("input", sub, name)]))

    # ---- websocket -----------------------------------------------------------------------
    async def send(self, kind: str, data: dict[str, Any], client_id: str | None) -> None:
        targets = (
            list(self.sockets.values())
            if client_id is None
            else ([self.sockets[client_id]] if client_id in self.sockets else [])
        )
        for socket in targets:
            try:
                await socket.send_text(json.dumps({"type": kind, "data": data}))
            except (RuntimeError, WebSocketDisconnect, OSError):
                pass

    async def status(self) -> None:
        remaining = len(self.queue) + (1 if self.running else 0)
        await self.send("status", {"status": {"exec_info": {"queue_remaining": remaining}}}, None)

    async def ws(self, socket: WebSocket) -> None:
        if self.refuse_ws:
            await socket.close()  # before accept: the handshake fails with 403
            return
        await socket.accept()
        self.ws_connects += 1
        sid = socket.query_params.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = socket
        remaining = len(self.queue) + (1 if self.running else 0)
        await socket.send_text(
            json.dumps(
                {
                    "type": "status",
                    "data": {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": sid},
                }
            )
        )
        try:
            while True:
                await socket.receive_text()  # client messages are ignored
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if self.sockets.get(sid) is socket:
                del self.sockets[sid]

    # ---- HTTP ----------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [
            ("/system_stats", self.system_stats, ["GET"]),
            ("/prompt", self.post_prompt, ["POST"]),
            ("/prompt", self.get_prompt, ["GET"]),
            ("/queue", self.get_queue, ["GET"]),
            ("/queue", self.post_queue, ["POST"]),
            ("/interrupt", self.interrupt, ["POST"]),
            ("/history/{prompt_id}", self.get_history, ["GET"]),
            ("/history", self.all_history, ["GET"]),
            ("/upload/image", self.upload, ["POST"]),
            ("/view", self.view, ["GET"]),
        ]
        table: list[Any] = []
        for prefix in ("", "/api"):  # every route also answers under /api
            table += [Route(prefix + path, fn, methods=methods) for path, fn, methods in routes]
            table.append(WebSocketRoute(prefix + "/ws", self.ws))

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            self.loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            worker = asyncio.create_task(self.worker())
            try:
                yield
            finally:
                worker.cancel()

        return Starlette(routes=table, lifespan=lifespan)

    async def system_stats(self, _: Request) -> Response:
        return JSONResponse(
            {
                "system": {
                    "os": "linux",
                    "ram_total": 25276514304,
                    "ram_free": 24120061952,
                    "comfyui_version": VERSION,
                    "python_version": "3.11.7",
                    "pytorch_version": "2.14.1+cu130",
                    "embedded_python": False,
                    "argv": ["main.py", "--cpu"],
                },
                "devices": self.devices,
            }
        )

    async def post_prompt(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse(
                "500 Internal Server Error\n\nServer got itself in trouble", status_code=500
            )
        number = self.number
        self.number += 1  # on every post, refused ones too
        if "prompt" not in body:
            return self._refuse("no_prompt", "No prompt provided", "No prompt provided")
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        try:
            if str(uuid.UUID(prompt_id)) != prompt_id:
                raise ValueError
        except (ValueError, TypeError, AttributeError):
            return self._refuse("invalid_prompt_id", "prompt_id must be a valid UUID", "")
        graph = body["prompt"]
        refused = self._validate(graph)
        if refused is not None:
            return refused
        extra = {**body.get("extra_data", {}), "create_time": int(time.time() * 1000)}
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        outputs = [i for i, n in graph.items() if nodes.CLASSES[n["class_type"]].output_node]
        self.prompts.append(body | {"prompt_id": prompt_id})
        task = Task(number, prompt_id, graph, extra, outputs)
        if body.get("front"):
            self.queue.appendleft(task)
        else:
            self.queue.append(task)
        await self.status()
        await self.status()  # ComfyUI often sends it twice in a row
        assert self._wake is not None
        self._wake.set()
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    def _refuse(
        self, kind: str, message: str, details: str, node_errors: Any = None, **extra: Any
    ) -> Response:
        error = {"type": kind, "message": message, "details": details, "extra_info": extra}
        return JSONResponse({"error": error, "node_errors": node_errors or {}}, status_code=400)

    def _validate(self, graph: dict[str, Any]) -> Response | None:
        for node_id, node in graph.items():
            class_type = node.get("class_type") if isinstance(node, dict) else None
            if class_type is None:
                return self._refuse(
                    "missing_node_type",
                    f"Node 'ID #{node_id}' has no class_type. "
                    "The workflow may be corrupted or a custom node is missing.",
                    f"Node ID '#{node_id}'",
                    node_id=node_id,
                    class_type=None,
                    node_title=None,
                )
            if class_type not in nodes.CLASSES:
                title = node.get("_meta", {}).get("title", class_type)
                return self._refuse(
                    "missing_node_type",
                    f"Node '{class_type}' not found. The custom node may not be installed.",
                    f"Node ID '#{node_id}'",
                    node_id=node_id,
                    class_type=class_type,
                    node_title=title,
                )
        outputs = [i for i, n in graph.items() if nodes.CLASSES[n["class_type"]].output_node]
        if not outputs:
            return self._refuse("prompt_no_outputs", "Prompt has no outputs", "")
        node_errors: dict[str, Any] = {}
        for node_id, node in graph.items():
            cls = nodes.CLASSES[node["class_type"]]
            errors = [
                error
                for name, spec in cls.inputs(self).items()
                if (error := nodes.validate_input(self, graph, node, name, spec, cls)) is not None
            ]
            if errors:
                node_errors[node_id] = {
                    "errors": errors,
                    "dependent_outputs": outputs,
                    "class_type": node["class_type"],
                }
        if node_errors:
            return self._refuse(
                "prompt_outputs_failed_validation",
                "Prompt outputs failed validation",
                "",
                node_errors,
            )
        return None

    async def get_prompt(self, _: Request) -> Response:
        remaining = len(self.queue) + (1 if self.running else 0)
        return JSONResponse({"exec_info": {"queue_remaining": remaining}})

    async def get_queue(self, _: Request) -> Response:
        running = [self.running.item()] if self.running else []
        return JSONResponse(
            {"queue_running": running, "queue_pending": [t.item() for t in self.queue]}
        )

    async def post_queue(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        if body.get("clear"):
            self.queue.clear()
        if "delete" in body:
            self.deletes.append(list(body["delete"]))
            self.queue = deque(t for t in self.queue if t.prompt_id not in body["delete"])
        await self.status()
        return Response(status_code=200)

    async def interrupt(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        self.interrupts.append(body)
        target = body.get("prompt_id")
        if self.running is not None and (target is None or target == self.running.prompt_id):
            self.running.interrupted = True
        return Response(status_code=200)

    async def get_history(self, request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        self.history_reads.append(prompt_id)
        entry = self.history.get(prompt_id)
        return JSONResponse({prompt_id: entry} if entry else {})

    async def all_history(self, request: Request) -> Response:
        items = list(self.history.items())
        if "max_items" in request.query_params:
            items = items[-int(request.query_params["max_items"]) :]
        return JSONResponse(dict(items))

    async def upload(self, request: Request) -> Response:
        async with request.form() as form:
            upload = form["image"]
            assert not isinstance(upload, str)
            data = await upload.read()
            kind = str(form.get("type") or "input")
            sub = str(form.get("subfolder") or "")
            name = str(upload.filename)
            overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        stem, dot, ext = name.rpartition(".")
        counter = 1
        while not overwrite and self.files.get((kind, sub, name), data) != data:
            name = f"{stem} ({counter}){dot}{ext}"
            counter += 1
        self.files[(kind, sub, name)] = data
        self.uploads.append(f"{sub}/{name}" if sub else name)
        return JSONResponse({"name": name, "subfolder": sub, "type": kind})

    async def view(self, request: Request) -> Response:
        query = request.query_params
        key = (query.get("type", "output"), query.get("subfolder", ""), query.get("filename", ""))
        if key not in self.files:
            return Response(status_code=404)
        return Response(
            self.files[key],
            media_type="image/png",
            headers={"Content-Disposition": f'filename="{key[2]}"'},
        )

    # ---- execution -----------------------------------------------------------------------
    async def worker(self) -> None:
        assert self._wake is not None
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            task = self.queue.popleft()
            self.running = task
            try:
                await self.execute(task)
            finally:
                self.running = None

    async def execute(self, task: Task) -> None:
        pid, cid = task.prompt_id, task.client_id
        messages: list[list[Any]] = []

        async def event(kind: str, data: dict[str, Any], keep: bool = False) -> None:
            data = {**data, "prompt_id": pid}
            if keep:
                messages.append([kind, {**data, "timestamp": int(time.time() * 1000)}])
            await self.send(kind, data, cid)

        await event("execution_start", {}, keep=True)
        await event("execution_cached", {"nodes": []}, keep=True)
        values: dict[str, tuple[Any, ...]] = {}
        outputs: dict[str, Any] = {}
        executed: list[str] = []
        current = ""
        try:
            for node_id in self._order(task.graph):
                current = node_id
                if task.interrupted:
                    raise Interrupted
                await event("executing", {"node": node_id, "display_node": node_id})
                ui = await self._run_node(task, node_id, values, event)
                if ui is not None:
                    outputs[node_id] = ui
                    await event(
                        "executed", {"node": node_id, "display_node": node_id, "output": ui}
                    )
                executed.append(node_id)
        except Interrupted:
            node = task.graph[current]
            await event(
                "execution_interrupted",
                {"node_id": current, "node_type": node["class_type"], "executed": executed},
                keep=True,
            )
            status = "error"
        except Exception as exc:
            node = task.graph[current]
            await event(
                "execution_error",
                {
                    "node_id": current,
                    "node_type": node["class_type"],
                    "executed": executed,
                    "exception_message": f"{exc}\n",
                    "exception_type": type(exc).__name__,
                    "traceback": traceback.format_exception(exc),
                    "current_inputs": {},
                    "current_outputs": list(task.graph),
                },
                keep=True,
            )
            status = "error"
        else:
            await event("execution_success", {}, keep=True)
            status = "success"
        await asyncio.sleep(self.history_lag)
        self.history[pid] = {
            "prompt": task.item(),
            "outputs": outputs if status == "success" else {},
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": messages,
            },
            "meta": {
                n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n}
                for n in outputs
            },
        }
        self.running = None
        await self.status()
        if self.done_marker:
            await self.send("executing", {"node": None, "prompt_id": pid}, cid)

    def _order(self, graph: dict[str, Any]) -> list[str]:
        order: list[str] = []

        def visit(node_id: str) -> None:
            if node_id in order:
                return
            for value in graph[node_id]["inputs"].values():
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                    visit(value[0])
            order.append(node_id)

        for node_id, node in graph.items():
            if nodes.CLASSES[node["class_type"]].output_node:
                visit(node_id)
        return order

    async def _run_node(
        self, task: Task, node_id: str, values: dict[str, tuple[Any, ...]], event: Any
    ) -> dict[str, Any] | None:
        node = task.graph[node_id]
        class_type = node["class_type"]
        inputs = {
            name: values[value[0]][value[1]]
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            else value
            for name, value in node["inputs"].items()
        }
        if class_type in self.fail_classes:
            raise RuntimeError(self.fail_classes[class_type])
        if class_type == "KSampler":
            await self._steps(task, node_id, int(inputs["steps"]), event)
            values[node_id] = (
                {**inputs["latent_image"], "images": nodes.sample(inputs["latent_image"], inputs)},
            )
            return None
        if class_type == "SaveImage":
            return {
                "images": [
                    self._save(image, inputs["filename_prefix"], task) for image in inputs["images"]
                ]
            }
        values[node_id] = nodes.run_simple(class_type, inputs, self)
        return None

    async def _steps(self, task: Task, node_id: str, total: int, event: Any) -> None:
        last_sent, last_value = 0.0, 0
        for step in range(1, total + 1):
            await asyncio.sleep(self.step_delay)
            if self._hold_step is not None and step >= self._hold_step and self._gate is not None:
                self._held.set()
                self.held_task, gate = task, self._gate
                while not gate.is_set() and not task.interrupted:
                    await asyncio.sleep(0.01)
                self.held_task = None
            if task.interrupted:  # checked inside progress updates, as ComfyUI does
                raise Interrupted
            now = time.monotonic()
            due = now - last_sent >= 0.1 and (step - last_value) / total >= 0.005
            if step in (1, total) or due:
                last_sent, last_value = now, step
                await event("progress", {"value": step, "max": total, "node": node_id})

    def _save(self, image: Image.Image, prefix: str, task: Task) -> dict[str, str]:
        sub, _, base = prefix.rpartition("/")
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        name = f"{base}_{self.counters[prefix]:05d}_.png"
        # As ComfyUI's SaveImage: the graph in a `prompt` text chunk, each key of
        # extra_data's `extra_pnginfo` in its own, compress level 4.
        metadata = PngInfo()
        metadata.add_text("prompt", json.dumps(task.graph))
        for key, value in (task.extra_data.get("extra_pnginfo") or {}).items():
            metadata.add_text(key, json.dumps(value))
        buffer = io.BytesIO()
        image.save(buffer, "PNG", pnginfo=metadata, compress_level=4)
        self.files[("output", sub, name)] = buffer.getvalue()
        return {"filename": name, "subfolder": sub, "type": "output"}


@contextmanager
def running_fake(**options: Any) -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI(**options)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake as a process of its own (benchmarks/comfyui_overhead.py), so it never
    shares a GIL with what measures it; runs until killed."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8188)
    # 0: history written with the end event, as a real ComfyUI does within microseconds.
    parser.add_argument("--history-lag", type=float, default=0.0)
    args = parser.parse_args(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with running_fake(port=args.port, history_lag=args.history_lag) as fake:
        print(f"fake ComfyUI on {fake.url}", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
