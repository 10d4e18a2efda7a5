"""The client's address: `X-Forwarded-For` believed only through trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import httpx
import pytest

from easel.gateway.client_address import TrustedProxies
from tests.support.downstream import PREFIX, Downstream
from tests.support.servers import ServerProcess


def scope(peer: str | None, *forwarded_for: str) -> dict[str, object]:
    return {
        "type": "http",
        "client": (peer, 4321) if peer is not None else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
    }


PROXIES = TrustedProxies([ip_network("10.0.0.0/8"), ip_network("::1")])


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    request = scope("203.0.113.9", "198.51.100.7")
    assert TrustedProxies().client(request) == "203.0.113.9"
    assert TrustedProxies().chain(request) == ["203.0.113.9"]


def test_an_untrusted_peers_claim_is_ignored() -> None:
    assert PROXIES.client(scope("203.0.113.9", "198.51.100.7")) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client() -> None:
    request = scope("10.0.0.2", "198.51.100.7")
    assert PROXIES.client(request) == "198.51.100.7"
    assert PROXIES.chain(request) == ["198.51.100.7", "10.0.0.2"]


def test_the_rightmost_untrusted_address_wins_over_what_the_client_wrote() -> None:
    # The client sent "X-Forwarded-For: 1.2.3.4"; two trusted proxies appended after it.
    request = scope("10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.3")
    assert PROXIES.client(request) == "198.51.100.7"
    assert PROXIES.chain(request) == ["198.51.100.7", "10.0.0.3", "10.0.0.1"]


def test_repeated_headers_are_one_list() -> None:
    request = scope("10.0.0.1", "1.2.3.4", "198.51.100.7")
    assert PROXIES.client(request) == "198.51.100.7"


def test_when_every_hop_is_trusted_the_furthest_is_the_client() -> None:
    assert PROXIES.client(scope("10.0.0.1", "10.0.0.5, 10.0.0.3")) == "10.0.0.5"
    assert PROXIES.client(scope("10.0.0.1")) == "10.0.0.1"


def test_a_hop_that_is_not_an_address_ends_the_trust() -> None:
    assert PROXIES.client(scope("10.0.0.1", "198.51.100.7, unknown, 10.0.0.3")) == "10.0.0.3"


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("198.51.100.7:5555", "198.51.100.7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        (" 2001:db8::7 ", "2001:db8::7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
    ],
)
def test_addresses_as_proxies_write_them(written: str, address: str) -> None:
    assert PROXIES.client(scope("::1", written)) == address


def test_a_scope_without_a_peer() -> None:
    assert PROXIES.client(scope(None, "198.51.100.7")) == "unknown"
    assert PROXIES.client({"type": "http", "client": ("testclient", 1), "headers": []}) == (
        "testclient"
    )


def test_a_real_gateway_neither_believes_nor_passes_on_a_clients_claim(
    gateway: ServerProcess, downstream: Downstream
) -> None:
    # Over real HTTP from loopback: uvicorn, which believes X-Forwarded-For from
    # 127.0.0.1 by default, must not have rewritten the peer either.
    response = httpx.post(
        f"{gateway.url}{PREFIX}/echo",
        content=b"{}",
        headers={
            "X-Forwarded-For": "198.51.100.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=198.51.100.7;proto=https",
            "X-Real-IP": "198.51.100.7",
        },
        timeout=10,
    )
    seen = response.json()["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    # The gateway's own answers, once each; the client's claims are gone.
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == gateway.url.removeprefix("http://")
    assert "forwarded" not in seen and "x-real-ip" not in seen
