"""Webhook signatures, the address guard, and delivery with retries (no network)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from easel.core.errors import InvalidInput
from easel.core.events import (
    JOB_EVENT_ADAPTER,
    EventType,
    JobQueued,
    JobStarted,
    Progress,
)
from easel.core.outbound import OutboundClient
from easel.jobs.models import Job, WebhookSpec
from easel.jobs.webhooks import (
    Webhooks,
    WebhookSender,
    check_webhook_url,
    message,
    secret_key,
    sign,
    verify,
)

PUBLIC = "http://93.184.216.34/hook"  # a public literal: no DNS needed


def hand_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_sign_with_a_plain_secret_is_hmac_sha256_of_id_timestamp_body() -> None:
    body = b'{"a": 1}'
    expected = hand_signature(b"s3cret", "msg_1", 1700000000, body)
    assert sign("s3cret", "msg_1", 1700000000, body) == expected
    assert sign("s3cret", "msg_1", 1700000000, body.decode()) == expected


def test_whsec_secrets_are_base64_keys() -> None:
    key = b"\x00\x01binary key\xff"
    secret = "whsec_" + base64.b64encode(key).decode()
    assert secret_key(secret) == key
    assert secret_key("plain") == b"plain"
    assert sign(secret, "m", 1, b"x") == hand_signature(key, "m", 1, b"x")
    with pytest.raises(ValueError):
        secret_key("whsec_not base64!")


def test_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks spec / svix libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify() -> None:
    body = b'{"type": "job.done"}'
    signature = sign("k", "msg_1", 1000, body)
    assert verify("k", "msg_1", "1000", body, signature, now=1010)
    assert verify("k", "msg_1", 1000, body, f"v1,bogus= {signature}", now=1000)  # rotated keys
    assert not verify("k", "msg_1", 1000, body + b" ", signature, now=1000)
    assert not verify("other", "msg_1", 1000, body, signature, now=1000)
    assert not verify("k", "msg_2", 1000, body, signature, now=1000)
    assert not verify("k", "msg_1", 1000, body, signature, now=1000 + 301)  # too old
    assert verify("k", "msg_1", 1000, body, signature, now=1000 + 301, tolerance_s=None)
    assert not verify("k", "msg_1", "soon", body, signature)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/hook", "non-public"),
        ("http://10.1.2.3/hook", "non-public"),
        ("http://192.168.0.5/hook", "non-public"),
        ("http://169.254.169.254/latest/meta-data", "non-public"),
        ("http://[::1]/hook", "non-public"),
        ("http://[::ffff:127.0.0.1]/hook", "non-public"),
        ("http://0.0.0.0/hook", "non-public"),
        ("http://224.0.0.1/hook", "non-public"),
        ("http://localhost:9000/hook", "non-public"),
        ("ftp://93.184.216.34/hook", "http"),
        ("file:///etc/passwd", "http"),
        ("javascript:alert(1)", "http"),
        ("http:///no-host", "no host"),
        ("http://93.184.216.34:99999/", "valid URL"),
    ],
)
async def test_url_guard_refuses(url: str, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await check_webhook_url(url, allow_private=False)
    assert refused.value.details[0]["field"] == "webhook.url"
    assert why in refused.value.message


async def test_url_guard_allows_public_and_private_when_told() -> None:
    await check_webhook_url(PUBLIC, allow_private=False)
    await check_webhook_url("https://[2606:2800:220:1:248:1893:25c8:1946]/", allow_private=False)
    await check_webhook_url("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(InvalidInput):  # the scheme rule holds regardless
        await check_webhook_url("ftp://127.0.0.1/", allow_private=True)


def test_webhook_events_are_validated() -> None:
    assert WebhookSpec(url=PUBLIC).events == ["done", "failed", "cancelled"]
    assert WebhookSpec(url=PUBLIC, events=["started", "progress"]).events
    for events in (["finished"], []):
        with pytest.raises(ValidationError):
            WebhookSpec(url=PUBLIC, events=events)  # type: ignore[arg-type]


def a_job(**webhook: Any) -> Job:
    return Job(
        id="job1",
        request={"prompt": "x"},
        created_at=0,
        updated_at=0,
        webhook=WebhookSpec(url=PUBLIC, **webhook),
    )


DONE_FIELDS = {
    "type": EventType.RESULT,
    "status": "done",
    "result": {"seed": 1, "images": [{"sha256": "ab", "seed": 1}]},
}
DONE = JOB_EVENT_ADAPTER.validate_python(DONE_FIELDS)


def test_message_carries_the_task_id_and_no_previews() -> None:
    done = message(a_job(), DONE, now=0)
    assert done["type"] == "job.done" and done["timestamp"].startswith("1970-01-01T00:00:00")
    assert done["data"] == {
        "task_id": "job1",
        **{k: v for k, v in DONE_FIELDS.items() if k != "type"},
    }
    progress = Progress(step=1, total=2, preview="iVBOR...")
    data = message(a_job(), progress, now=0)["data"]
    assert data == {"task_id": "job1", "status": "running", "step": 1, "total": 2}


class Receiver:
    """Answers with the given statuses in turn (an exception: raised), then 200."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)


def sender_for(receiver: Receiver, sleeps: list[float], **options: Any) -> WebhookSender:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    return WebhookSender(
        outbound=OutboundClient(client),
        secret="k",
        max_attempts=options.pop("max_attempts", 5),
        backoff_s=1.0,
        clock=lambda: 1000.0,
        sleep=sleep,
        **options,
    )


async def test_delivery_retries_5xx_429_and_connection_errors_with_backoff() -> None:
    receiver = Receiver(500, 429, httpx.ConnectError("refused"), 503)
    sleeps: list[float] = []
    assert await sender_for(receiver, sleeps).deliver(a_job(), DONE)
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(receiver.requests) == 5 and len(ids) == 1  # one message, five attempts
    last = receiver.requests[-1]
    assert verify("k", last.headers["webhook-id"], last.headers["webhook-timestamp"],
                  last.content, last.headers["webhook-signature"], now=1000)  # fmt: skip
    assert json.loads(last.content)["data"]["task_id"] == "job1"


async def test_delivery_stops_on_4xx_and_after_max_attempts() -> None:
    receiver, sleeps = Receiver(410), []
    assert not await sender_for(receiver, sleeps).deliver(a_job(), DONE)
    assert len(receiver.requests) == 1 and sleeps == []
    receiver = Receiver(500, 500, 500)
    assert not await sender_for(receiver, sleeps, max_attempts=2).deliver(a_job(), DONE)
    assert len(receiver.requests) == 2 and sleeps == [1.0]


async def test_delivery_checks_the_address_again() -> None:
    receiver, sleeps = Receiver(), []
    job = a_job().model_copy(update={"webhook": WebhookSpec(url="http://127.0.0.1/x")})
    assert not await sender_for(receiver, sleeps).deliver(job, DONE)
    assert receiver.requests == []


async def test_notify_follows_the_events_filter_and_needs_a_secret() -> None:
    receiver, sleeps = Receiver(), []
    webhooks = Webhooks(sender_for(receiver, sleeps))
    await webhooks.notify(a_job(), Progress(step=1, total=2))
    await webhooks.notify(a_job(), JobQueued())
    await webhooks.notify(a_job(events=["progress"]), Progress(step=1, total=2))
    await webhooks.notify(a_job(), DONE)
    await webhooks.aclose()  # cancels: the tasks have not run yet
    webhooks = Webhooks(sender_for(receiver, sleeps))
    await webhooks.notify(a_job(events=["progress"]), Progress(step=1, total=2))
    await webhooks.notify(a_job(), DONE)
    await webhooks.notify(a_job(), JobStarted(attempt=1))  # not asked for
    await asyncio.gather(*webhooks.pending)
    types = sorted(json.loads(r.content)["type"] for r in receiver.requests)
    assert types == ["job.done", "job.progress"]
    await webhooks.check(WebhookSpec(url=PUBLIC))
    with pytest.raises(InvalidInput, match="EASEL_WEBHOOK_SECRET"):
        await Webhooks(None).check(WebhookSpec(url=PUBLIC))
