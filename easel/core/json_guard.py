"""JSON texts no parser may be given: invalid UTF-8, or nesting past a limit.

Python's json parser recurses once per `[` or `{` and raises RecursionError near 1,000
levels; a text it does parse, a few hundred levels deep, can still exhaust the stack of
whatever walks it later (validation, storage, the worker's call to generation). So the
depth is measured before anything parses, by a scan that never recurses and costs time
linear in the body, in C (`bytes.translate` to skip plain text, numpy for the rest).

`JsonGuardMiddleware` applies it to every JSON body a service receives, whoever parses it
afterwards (`easel.core.body`, or FastAPI for a route with a pydantic body parameter);
`check_json_text` serves JSON carried inside a form field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from easel.core.errors import InvalidInput, error_body
from easel.core.middleware import send_json_error

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STEP = np.zeros(256, dtype=np.int32)  # what each byte does to the level, outside strings
_STEP[list(b"[{")], _STEP[list(b"]}")] = 1, -1
_NOT_SYNTAX = bytes(sorted(set(range(256)) - set(b'"\\[]{}')))
_CHUNK = 1 << 16  # bytes per numpy pass: bounds its memory; small, so that plain text
# around a base64 image (no quote, bracket or backslash) is skipped whole: 1 MiB chunks cost
# a 2.7 MB image body 21 ms, these 1.6 ms


@dataclass
class _Scan:
    """What one chunk hands the next: inside a string or not, whether its last byte is an
    unescaped backslash (escaping the next chunk's first), and the nesting level."""

    in_string: bool = False
    escaping: bool = False
    level: int = 0
    deepest: int = 0

    def feed(self, chunk: npt.NDArray[np.uint8]) -> None:
        quote = chunk == _QUOTE
        backslash = chunk == _BACKSLASH
        if self.escaping or backslash.any():  # else no byte is escaped: skip the work
            quote &= ~self._escaped(backslash)
        # Quotes so far, odd: inside a string (a bracket there is text).
        inside = (np.cumsum(quote, dtype=np.int64) + self.in_string) & 1 == 1
        levels = np.cumsum(np.where(inside, 0, _STEP[chunk]), dtype=np.int64) + self.level
        self.deepest = max(self.deepest, int(levels.max()))
        self.level = int(levels[-1])
        self.in_string = bool(inside[-1])

    def _escaped(self, backslash: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """The bytes an odd run of backslashes ends right before; updates `escaping`."""
        index = np.arange(len(backslash), dtype=np.int64)
        last_plain = np.maximum.accumulate(np.where(backslash, -1, index))
        before = np.concatenate(([-1], last_plain[:-1]))
        run = index - 1 - before + ((before == -1) & self.escaping)
        tail = len(backslash) - 1 - int(last_plain[-1])
        self.escaping = bool((tail + (last_plain[-1] == -1) * self.escaping) & 1)
        return np.asarray(run & 1 == 1)


def nesting_depth(text: bytes, *, limit: int | None = None) -> int:
    """How deep a JSON parser would recurse on `text` (UTF-8, or UTF-16/32 of ASCII):
    arrays and objects open at once, strings skipped. For a text that is not JSON, at
    least as deep as a parser gets before it finds out. Linear in the text, in numpy
    passes: no text makes it slow (a regular expression would be for some). With
    `limit`, stops at the first chunk deeper than that."""
    scan = _Scan()
    for start in range(0, len(text), _CHUNK):
        if limit is not None and scan.deepest > limit:
            break
        piece = text[start : start + _CHUNK]
        if not piece.translate(None, delete=_NOT_SYNTAX):
            scan.escaping = False  # no quote, backslash or bracket: only a run ends here
            continue
        scan.feed(np.frombuffer(piece, dtype=np.uint8))
    return scan.deepest


def check_json_text(text: bytes, *, max_depth: int, field: str = "body") -> None:
    """Refuse a JSON text (`field` names it) no parser may be given: InvalidInput (422)."""
    if not text.isascii():  # ASCII is valid whatever the encoding (and the common case)
        # The encodings json.loads accepts: UTF-8, or UTF-16/32 found by their zero bytes.
        encoding = json.detect_encoding(text)
        try:
            decoded = text.decode(encoding, "surrogatepass")
        except UnicodeDecodeError as exc:
            name = encoding.upper()
            raise InvalidInput(
                f"{field} is not valid {name}: {exc.reason} at byte {exc.start}",
                details=[{"field": field, "message": f"invalid {name}"}],
            ) from exc
        if not encoding.startswith("utf-8"):
            text = decoded.encode("utf-8", "surrogatepass")
    if nesting_depth(text, limit=max_depth) > max_depth:
        raise InvalidInput(
            f"{field} is nested deeper than the limit of {max_depth} levels",
            details=[{"field": field, "message": f"nested deeper than {max_depth} levels"}],
        )


def is_json_media_type(content_type: str | None) -> bool:
    """What some parser here reads as JSON: `application/json`, `application/*+json`, or
    no content type at all (`easel.core.body` reads that as JSON)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class JsonGuardMiddleware:
    """Reads a JSON request body whole (its size bounded by the body limit before it),
    checks it with `check_json_text`, and hands it on as one message, or answers 422."""

    def __init__(self, app: ASGIApp, *, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = Headers(scope=scope).get("content-type") if scope["type"] == "http" else None
        if scope["type"] != "http" or not is_json_media_type(content_type):
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive)
        try:
            check_json_text(body, max_depth=self.max_depth)
        except InvalidInput as exc:
            await send_json_error(send, exc.status, error_body(exc.code, exc.message, exc.details))
            return

        async def replaying_receive() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replaying_receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and the messages to hand on in its place: the body as one, then a
    disconnect if one came while reading."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if message["type"] != "http.request":
        replay.append(message)
    return body, replay
