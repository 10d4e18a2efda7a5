"""The webhook guard cannot be rebound: a delivery connects to exactly the address that
was checked, and addresses that embed or reach a non-public one are refused.

Names are resolved by an injected `Resolver` whose answer changes between calls (a DNS
rebinding attacker), and a real receiver on loopback stands for what must never be hit.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from easel.core.address_guard import IPAddress
from easel.core.errors import InvalidInput
from easel.core.events import JOB_EVENT_ADAPTER, EventType
from easel.core.outbound import OutboundClient
from easel.jobs.models import Job, WebhookSpec
from easel.jobs.webhooks import WebhookSender, check_webhook_url, verify
from tests.support.downstream import serving_in_thread
from tests.support.servers import free_port

PUBLIC = ipaddress.ip_address("93.184.216.34")
LOOPBACK = ipaddress.ip_address("127.0.0.1")
DONE = JOB_EVENT_ADAPTER.validate_python(
    {"type": EventType.RESULT, "status": "done", "result": {"seed": 1, "images": []}}
)


class ScriptedResolver:
    """Answers each name with the next of `answers` (the last one from then on)."""

    def __init__(self, *answers: IPAddress) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]]


@dataclass
class LoopbackReceiver:
    """A real HTTP server on 127.0.0.1: records every request, answers 200."""

    port: int = field(default_factory=free_port)
    hits: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.hits.append((dict(request.headers), body))
            return Response(status_code=200)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@contextmanager
def loopback_receiver() -> Iterator[LoopbackReceiver]:
    receiver = LoopbackReceiver()
    with serving_in_thread(receiver.app(), receiver.port):
        yield receiver


class PublicInternet(httpx.AsyncBaseTransport):
    """What a delivery reaches: requests addressed to `public` get `answer` here (this
    machine has no route to the internet); everything else goes out for real."""

    def __init__(self, public: IPAddress, answer: httpx.Response | None = None) -> None:
        self.public = public
        self.answer = answer or httpx.Response(200)
        self.seen: list[httpx.Request] = []
        self.real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == str(self.public):
            self.seen.append(request)
            return self.answer
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


def job_with_webhook(url: str) -> Job:
    return Job(
        id="job1", request={"prompt": "x"}, created_at=0, updated_at=0, webhook=WebhookSpec(url=url)
    )


async def deliver(
    transport: httpx.AsyncBaseTransport, resolver: ScriptedResolver, url: str, **options: bool
) -> bool:
    """One webhook delivery of a job's `done` event to `url`, up to 3 attempts."""

    async def no_sleep(_: float) -> None:
        pass

    async with httpx.AsyncClient(transport=transport) as client:
        outbound = OutboundClient(client, resolver=resolver, **options)
        webhook = WebhookSender(outbound=outbound, secret="k", max_attempts=3, sleep=no_sleep)
        return await webhook.deliver(job_with_webhook(url), DONE)


async def test_a_name_that_rebinds_to_loopback_never_reaches_it() -> None:
    # `localhost` is what the system resolver answers 127.0.0.1 for: a second resolution
    # by the HTTP client would reach the receiver.
    resolver = ScriptedResolver(PUBLIC, LOOPBACK)
    internet = PublicInternet(PUBLIC)
    with loopback_receiver() as receiver:
        url = f"http://localhost:{receiver.port}/hook"
        delivered = await deliver(internet, resolver, url)
        assert receiver.hits == []
        assert delivered  # by the public address that was checked
        (request,) = internet.seen
        assert request.headers["host"] == f"localhost:{receiver.port}"
        # The name now answers loopback: the next delivery is refused, not sent.
        assert not await deliver(PublicInternet(PUBLIC), resolver, url)
        assert receiver.hits == []


async def test_a_delivery_connects_to_the_checked_address_with_the_name_as_host() -> None:
    # `receiver.test` resolves nowhere but through the injected resolver: the POST arrives
    # only if the connection goes to the address that resolver gave.
    resolver = ScriptedResolver(LOOPBACK)
    with loopback_receiver() as receiver:
        url = f"http://receiver.test:{receiver.port}/hook"
        assert await deliver(httpx.AsyncHTTPTransport(), resolver, url, allow_private=True)
    ((headers, body),) = receiver.hits
    assert headers["host"] == f"receiver.test:{receiver.port}"
    assert verify("k", headers["webhook-id"], headers["webhook-timestamp"], body,
                  headers["webhook-signature"])  # fmt: skip
    assert resolver.asked == ["receiver.test"]


class FlakyResolver(ScriptedResolver):
    """Fails its first lookup (a resolver briefly unreachable), then answers."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if not self.asked:
            self.asked.append(host)
            raise OSError("temporary failure in name resolution")
        return await super().resolve(host, port)


async def test_a_name_that_does_not_resolve_for_a_moment_is_tried_again() -> None:
    internet = PublicInternet(PUBLIC)
    assert await deliver(internet, FlakyResolver(PUBLIC), "http://hooks.example.com/")
    assert len(internet.seen) == 1


async def test_https_keeps_the_name_for_tls() -> None:
    internet = PublicInternet(PUBLIC)
    assert await deliver(internet, ScriptedResolver(PUBLIC), "https://hooks.example.com/in")
    (request,) = internet.seen
    assert request.url == httpx.URL(f"https://{PUBLIC}/in")
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_a_redirect_to_loopback_is_not_followed() -> None:
    with loopback_receiver() as receiver:
        target = f"http://127.0.0.1:{receiver.port}/hook"
        internet = PublicInternet(PUBLIC, httpx.Response(307, headers={"location": target}))
        assert not await deliver(internet, ScriptedResolver(PUBLIC), "http://hooks.example.com/")
    assert receiver.hits == [] and len(internet.seen) == 1


NON_PUBLIC = [
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:c0a8:1::1",  # 6to4 of 192.168.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254 (cloud metadata)
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001::1",  # Teredo
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::5db8:d822",  # local-use NAT64
    "fec0::1",  # site-local
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.1.2.3",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible
    "::5db8:d822",  # IPv4-compatible, of a public IPv4: still never routed
    "::1",
    "::",
    "fc00::1",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
    "3fff::1",  # documentation (RFC 9637)
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",  # CGNAT
    "198.18.0.1",  # benchmarking
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",  # 6to4 relay anycast
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
]


def literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_non_public_addresses_are_refused_as_literals_and_as_names(address: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await check_webhook_url(f"http://{literal(address)}:8080/hook", allow_private=False)
    assert refused.value.details[0]["field"] == "webhook.url"
    resolver = ScriptedResolver(ipaddress.ip_address(address))
    with pytest.raises(InvalidInput, match="non-public"):
        await check_webhook_url("http://hooks.example.com/", allow_private=False, resolver=resolver)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:93.184.216.34",  # IPv4-mapped form of a public address
        "2002:5db8:d822::1",  # 6to4 of a public address
        "64:ff9b::5db8:d822",  # NAT64 (DNS64 answers this on IPv6-only networks)
    ],
)
async def test_public_addresses_pass(address: str) -> None:
    await check_webhook_url(f"http://{literal(address)}/hook", allow_private=False)
    resolver = ScriptedResolver(ipaddress.ip_address(address))
    await check_webhook_url("http://hooks.example.com/", allow_private=False, resolver=resolver)
