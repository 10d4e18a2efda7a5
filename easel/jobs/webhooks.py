"""Job webhooks: signed POSTs to a URL given with the job, sent when the job ends
(and, when asked for, when it starts and as it progresses).

Messages follow Standard Webhooks (https://www.standardwebhooks.com): headers
`webhook-id` (one per message, the same on every retry), `webhook-timestamp` (Unix
seconds of the attempt) and `webhook-signature` = `v1,` + base64 HMAC-SHA256 of
`{id}.{timestamp}.{body}`. The secret (EASEL_WEBHOOK_SECRET) is either `whsec_` + a
base64 key, as Standard Webhooks libraries expect, or any other string, whose UTF-8
bytes are the key. `sign` and `verify` here are what a receiver written in Python needs.

Deliveries run in the background (`Webhooks.notify`); they never block or fail a job.
They go through the server's outbound client (`easel.core.outbound`): URLs are checked at
submit and again before each attempt, and each attempt connects to exactly the address
checked: loopback, private, link-local and other non-public addresses are refused unless
EASEL_WEBHOOK_ALLOW_PRIVATE. Redirects are not followed (a 3xx is a failed attempt). Each
POST carries the job's trace (`traceparent`: a span of the trace that submitted the job).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from easel.core.address_guard import (
    SYSTEM_RESOLVER,
    HostUnresolved,
    Resolver,
    UrlRefused,
    check_url,
)
from easel.core.errors import InvalidInput
from easel.core.events import EventType, JobEvent, job_event_data
from easel.core.outbound import OutboundClient, OutboundError
from easel.jobs.context import job_context
from easel.jobs.models import Job, WebhookEvent, WebhookSpec

log = logging.getLogger("easel.jobs.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# Job event type -> webhook event name (what `webhook.events` filters on).
EVENT_NAMES: dict[EventType, WebhookEvent] = {
    EventType.STARTED: "started",
    EventType.PROGRESS: "progress",
    EventType.RESULT: "done",
    EventType.ERROR: "failed",
    EventType.CANCELLED: "cancelled",
}


# ---- signatures -----------------------------------------------------------------------
def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 key of a `whsec_...` secret, else the string's bytes."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>`."""
    raw = body.encode() if isinstance(body, str) else body
    signed = f"{msg_id}.{timestamp}.".encode() + raw
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str,
    msg_id: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    *,
    tolerance_s: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """True when `signature` (a `webhook-signature` header: space-separated `v1,...`
    entries) signs the message, and its timestamp is within `tolerance_s` of now
    (None: any age)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if tolerance_s is not None and abs((now or time.time()) - stamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, stamp, body)
    return any(hmac.compare_digest(expected, given) for given in signature.split())


# ---- addresses ------------------------------------------------------------------------
def refused(exc: UrlRefused) -> InvalidInput:
    """A refused webhook URL, as the submit's 422 names it."""
    hint = "; set EASEL_WEBHOOK_ALLOW_PRIVATE=true to allow it" if exc.non_public else ""
    return InvalidInput.field("webhook.url", exc.message + hint)


async def check_webhook_url(
    url: str, *, allow_private: bool, resolver: Resolver = SYSTEM_RESOLVER
) -> None:
    """Raise InvalidInput naming `webhook.url` unless `url` is http(s) with a host that
    is (and resolves only to) public addresses; `allow_private` lifts the address rule."""
    try:
        await check_url(url, allow_private=allow_private, resolver=resolver)
    except UrlRefused as exc:
        raise refused(exc) from exc


# ---- delivery -------------------------------------------------------------------------
def message(job: Job, event: JobEvent, *, now: float) -> dict[str, Any]:
    """The JSON body for one job event: images by reference only (sha256), no previews."""
    name = EVENT_NAMES[event.type]
    data = job_event_data(event, exclude={"type", "preview"})
    data.setdefault("status", "running")
    return {
        "type": f"job.{name}",
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
        "data": {"task_id": job.id, **data},
    }


# What a receiver may answer; nothing of it is read but the status.
_MAX_ANSWER_BYTES = 64 * 1024


def _worth_retrying(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookSender:
    """POSTs signed messages through `outbound`, retrying connection errors, timeouts,
    429 and 5xx with exponential backoff (`backoff_s`, then doubling) up to
    `max_attempts`; `timeout_s` bounds each attempt."""

    def __init__(
        self,
        *,
        outbound: OutboundClient,
        secret: str,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        secret_key(secret)  # a malformed whsec_ secret fails at start-up, not per message
        self.outbound = outbound
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.sleep = sleep

    async def deliver(self, job: Job, event: JobEvent) -> bool:
        """Send one event of `job` to its webhook; True once the receiver answered 2xx."""
        if job.webhook is None:
            return False
        url = job.webhook.url
        body = json.dumps(message(job, event, now=self.clock())).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        for attempt in range(1, self.max_attempts + 1):
            try:  # the address is checked again: what the name resolves to may have changed
                outcome, retry = await self._attempt(url, msg_id, body)
            except UrlRefused as exc:
                log.warning(
                    "webhook %s of job %s refused: %s", msg_id, job.id, refused(exc).message
                )
                return False
            if outcome is None:
                log.info("webhook %s of job %s delivered (attempt %d)", msg_id, job.id, attempt)
                return True
            log.warning(
                "webhook %s of job %s to %s: attempt %d/%d failed (%s)",
                msg_id, job.id, url, attempt, self.max_attempts, outcome,
            )  # fmt: skip
            if not retry:
                return False
            if attempt < self.max_attempts:
                await self.sleep(self.backoff_s * 2 ** (attempt - 1))
        log.error("webhook %s of job %s: gave up after %d attempts", msg_id, job.id, attempt)
        return False

    async def _attempt(self, url: str, msg_id: str, body: bytes) -> tuple[str | None, bool]:
        """One POST: (None, _) when delivered, else (what went wrong, worth retrying).
        UrlRefused when the URL may not be called (now)."""
        timestamp = int(self.clock())  # per attempt, so a late retry is not judged stale
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.secret, msg_id, timestamp, body),
        }
        try:
            response = await self.outbound.request(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout_s=self.timeout_s,
                max_response_bytes=_MAX_ANSWER_BYTES,
            )
        except UrlRefused:
            raise
        except HostUnresolved as exc:
            return str(exc), True
        except (OutboundError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}", True
        if response.is_success:
            return None, False
        return f"HTTP {response.status_code}", _worth_retrying(response.status_code)


class Webhooks:
    """The job manager's webhooks: checks a job's webhook at submit, and delivers its
    events in the background. `sender` is None when no secret is configured: then jobs
    with a webhook are refused."""

    def __init__(self, sender: WebhookSender | None) -> None:
        self.sender = sender
        self.pending: set[asyncio.Task[bool]] = set()

    async def check(self, spec: WebhookSpec) -> None:
        if self.sender is None:
            raise InvalidInput.field(
                "webhook", "webhooks are off on this server: set EASEL_WEBHOOK_SECRET to use them"
            )
        outbound = self.sender.outbound
        await check_webhook_url(
            spec.url, allow_private=outbound.allow_private, resolver=outbound.resolver
        )

    async def notify(self, job: Job, event: JobEvent) -> None:
        """Schedule delivery of `event` when the job's webhook asks for it; never waits."""
        name = EVENT_NAMES.get(event.type)
        if self.sender is None or job.webhook is None or name not in job.webhook.events:
            return
        task = asyncio.create_task(self._deliver(self.sender, job, event))
        self.pending.add(task)  # a reference, so the task is not garbage-collected
        task.add_done_callback(self.pending.discard)

    @staticmethod
    async def _deliver(sender: WebhookSender, job: Job, event: JobEvent) -> bool:
        try:
            with job_context(job):  # the POST and its log lines continue the job's trace
                return await sender.deliver(job, event)
        except Exception:  # a bug here must not vanish into an unawaited task
            log.exception("webhook delivery for job %s broke", job.id)
            return False

    async def aclose(self) -> None:
        """Cancel deliveries still under way (shutdown)."""
        for task in list(self.pending):
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)
