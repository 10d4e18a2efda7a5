"""The closed-loop load of comfyui_overhead.py, run as its own process: C clients each send
one request, wait for its images, and send the next, until N have finished in total.

    python benchmarks/_comfyui_load.py direct COMFYUI_URL -n N -c C [--warmup W] [--colour C0]
    python benchmarks/_comfyui_load.py easel EASEL_URL -n N -c C ...

`direct` is a good ComfyUI API client, as ComfyUI's own websocket example is: each client
keeps a websocket under its own client id, posts the graph (`POST /prompt` with that id and
a prompt id of its choosing), waits on the socket for the prompt's end (`executing` with
node null, sent once the history entry is written), reads `/history/{id}` and fetches each
output with `/view`. `easel` posts the same workflow to easel's sync `POST /api/generate`
(the ComfyUI engine in front of the same ComfyUI) and reads the images from the answer.
Every request paints a colour of its own (`--colour` onwards), so ComfyUI's cache never
answers one. Prints one JSON object in the shape of _loadgen.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import uvloop

COLOURS = 1 << 24  # EmptyImage's colour is 0xRRGGBB
ENDED = ("execution_error", "execution_interrupted")


def graph(colour: int, size: int, prefix: str) -> dict[str, Any]:
    """EmptyImage -> ImageInvert -> SaveImage: no weights, a few ms in ComfyUI."""
    return {
        "1": {"class_type": "EmptyImage", "_meta": {"title": "Canvas"},
              "inputs": {"width": size, "height": size, "batch_size": 1, "color": colour}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage",
              "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }  # fmt: skip


class Failure(Exception):
    """A request that did not end with its images; `code` as an HTTP status (0: none)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


Send = Callable[[int], Awaitable[None]]  # one request, painting the given colour


async def direct_client(session: aiohttp.ClientSession, url: str, size: int, prefix: str) -> Send:
    client_id = f"bench-{uuid.uuid4().hex}"
    ws = await session.ws_connect(f"{url}/ws", params={"clientId": client_id})

    async def send(colour: int) -> None:
        prompt_id = str(uuid.uuid4())
        body = {
            "prompt": graph(colour, size, prefix),
            "client_id": client_id,
            "prompt_id": prompt_id,
        }
        async with session.post(f"{url}/prompt", json=body) as answer:
            if answer.status != 200:
                raise Failure(answer.status, (await answer.text())[:300])
        async for message in ws:  # one prompt in flight per client: read until its end
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue  # binary previews
            event = json.loads(message.data)
            data = event.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            if event["type"] in ENDED:
                raise Failure(502, f"{event['type']}: {str(data)[:300]}")
            if event["type"] == "executing" and data.get("node") is None:
                break
        else:
            raise Failure(0, "the websocket closed")
        async with session.get(f"{url}/history/{prompt_id}") as answer:
            entry = (await answer.json()).get(prompt_id)
        if not entry:
            raise Failure(502, f"no history for {prompt_id}")
        files = [f for out in entry["outputs"].values() for f in out.get("images", [])]
        if not files:
            raise Failure(502, "no output image")
        for file in files:
            params = {
                "filename": file["filename"],
                "subfolder": file["subfolder"],
                "type": file["type"],
            }
            async with session.get(f"{url}/view", params=params) as answer:
                if answer.status != 200:
                    raise Failure(answer.status, "GET /view")
                await answer.read()

    return send


async def easel_client(session: aiohttp.ClientSession, url: str, size: int, prefix: str) -> Send:
    async def send(colour: int) -> None:
        body = {
            "model": "bench-invert",
            "width": size,
            "height": size,
            "extra_params": {"color": colour, "prefix": prefix},
        }
        async with session.post(f"{url}/api/generate", json=body) as answer:
            if answer.status != 200:
                raise Failure(answer.status, (await answer.text())[:300])
            result = await answer.json()
        if not result.get("images"):
            raise Failure(502, "no image in the answer")

    return send


async def run(
    kind: str, url: str, *, total: int, concurrency: int, warmup: int, colour: int, size: int
) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        make = direct_client if kind == "direct" else easel_client
        # ComfyUI's SaveImage lists the prefix's folder on every save, so one folder per
        # load process keeps that cost from growing over a run (and between targets).
        prefix = f"bench/{kind}-{uuid.uuid4().hex[:12]}/img"
        clients = [await make(session, url, size, prefix) for _ in range(concurrency)]
        latencies: list[float] = []
        status: dict[int, int] = {}
        remaining = 0
        first_error = ""
        next_colour = colour

        async def worker(send: Send) -> None:
            nonlocal remaining, first_error, next_colour
            while remaining > 0:
                remaining -= 1
                painted, next_colour = next_colour % COLOURS, next_colour + 1
                sent = time.perf_counter()
                try:
                    await send(painted)
                    code = 200
                except Failure as exc:
                    code, first_error = exc.code, first_error or f"HTTP {exc.code}: {exc}"
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    code, first_error = 0, first_error or repr(exc)
                latencies.append((time.perf_counter() - sent) * 1000)
                status[code] = status.get(code, 0) + 1

        # Warm up every client (sockets, connections, the servers' code paths), then
        # measure afresh.
        remaining = max(warmup, concurrency)
        await asyncio.gather(*(worker(send) for send in clients))
        warmup_requests, warmup_errors = len(latencies), len(latencies) - status.get(200, 0)
        latencies.clear()
        status.clear()
        remaining = total
        started = time.perf_counter()
        await asyncio.gather(*(worker(send) for send in clients))
        seconds = time.perf_counter() - started
    ok = status.get(200, 0)
    return {
        "requests": len(latencies),
        "errors": len(latencies) - ok,
        "warmup_requests": warmup_requests,
        "warmup_errors": warmup_errors,
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "latencies_ms": latencies,
        "status": {str(code): count for code, count in status.items()},
        "colours_used": next_colour - colour,
        "first_error": first_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("direct", "easel"))
    parser.add_argument("url")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--colour", type=int, default=0, help="the first request's colour")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    args = parser.parse_args()
    result = uvloop.run(
        run(
            args.kind,
            args.url.rstrip("/"),
            total=args.requests,
            concurrency=args.concurrency,
            warmup=args.warmup,
            colour=args.colour,
            size=args.size,
        )
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
