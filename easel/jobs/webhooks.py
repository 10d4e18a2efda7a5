"""Job webhooks: signed POSTs to a URL given with the job, sent when the job ends
(and, when asked for, when it starts and as it progresses).

Messages follow Standard Webhooks (https://www.standardwebhooks.com): headers
`webhook-id` (one per message, the same on every retry), `webhook-timestamp` (Unix
seconds of the attempt) and `webhook-signature` = `v1,` + base64 HMAC-SHA256 of
`{id}.{timestamp}.{body}`. The secret (EASEL_WEBHOOK_SECRET) is either `whsec_` + a
base64 key, as Standard Webhooks libraries expect, or any other string, whose UTF-8
bytes are the key. `sign` and `verify` here are what a receiver written in Python needs.

Deliveries run in the background (`Webhooks.notify`); they never block or fail a job.
URLs are checked at submit and again before each attempt, and each attempt connects to
exactly the address checked (`webhook_guard`): loopback, private, link-local and other
non-public addresses are refused unless EASEL_WEBHOOK_ALLOW_PRIVATE. Redirects are not
followed (they could lead anywhere).
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

from easel.core.errors import InvalidInput
from easel.core.events import EventType, JobEvent, job_event_data
from easel.jobs.models import Job, WebhookEvent, WebhookSpec
from easel.jobs.webhook_guard import (
    SYSTEM_RESOLVER,
    HostUnresolved,
    Resolver,
    Target,
    check_webhook_url,
    pin,
)

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


def _worth_retrying(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookSender:
    """POSTs signed messages, retrying connection errors, timeouts, 429 and 5xx with
    exponential backoff (`backoff_s`, then doubling) up to `max_attempts`."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        secret: str,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        allow_private: bool = False,
        resolver: Resolver = SYSTEM_RESOLVER,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        secret_key(secret)  # a malformed whsec_ secret fails at start-up, not per message
        self.client = client
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.resolver = resolver
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
            outcome: str | None
            try:  # again: what the name resolves to may have changed since submit
                target = await pin(url, allow_private=self.allow_private, resolver=self.resolver)
            except InvalidInput as exc:
                log.warning("webhook %s of job %s refused: %s", msg_id, job.id, exc.message)
                return False
            except HostUnresolved as exc:
                outcome, retry = str(exc), True
            else:
                outcome, retry = await self._attempt(target, msg_id, body)
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

    async def _attempt(self, target: Target, msg_id: str, body: bytes) -> tuple[str | None, bool]:
        """One POST to the checked address: (None, _) when delivered, else (what went
        wrong, worth retrying)."""
        timestamp = int(self.clock())  # per attempt, so a late retry is not judged stale
        headers = {
            "host": target.host_header,
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.secret, msg_id, timestamp, body),
        }
        try:
            response = await self.client.post(
                target.url,
                content=body,
                headers=headers,
                extensions=target.extensions,
                timeout=self.timeout_s,
                follow_redirects=False,  # a redirect could lead anywhere the guard refuses
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}", True
        if response.is_success:
            return None, False
        return f"HTTP {response.status_code}", _worth_retrying(response.status_code)


class Webhooks:
    """The job manager's webhooks: checks a job's webhook at submit, and delivers its
    events in the background. `sender` is None when no secret is configured: then jobs
    with a webhook are refused."""

    def __init__(self, sender: WebhookSender | None, *, allow_private: bool) -> None:
        self.sender = sender
        self.allow_private = allow_private
        self.pending: set[asyncio.Task[bool]] = set()

    async def check(self, spec: WebhookSpec) -> None:
        if self.sender is None:
            raise InvalidInput.field(
                "webhook", "webhooks are off on this server: set EASEL_WEBHOOK_SECRET to use them"
            )
        await check_webhook_url(
            spec.url, allow_private=self.allow_private, resolver=self.sender.resolver
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
            return await sender.deliver(job, event)
        except Exception:  # a bug here must not vanish into an unawaited task
            log.exception("webhook delivery for job %s broke", job.id)
            return False

    async def aclose(self) -> None:
        """Cancel deliveries still under way (shutdown)."""
        for task in list(self.pending):
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)
