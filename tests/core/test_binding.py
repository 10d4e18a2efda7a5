"""Which bind addresses only this machine can reach, and the start-up rule built on it."""

from __future__ import annotations

import pytest

from easel.core.binding import UnsafeBinding, check_binding, is_loopback


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.2", "10.0.0.1", "example.com", ""])
def test_addresses_others_can_reach(host: str) -> None:
    assert not is_loopback(host)


def test_the_rule() -> None:
    assert check_binding("127.0.0.1", protected=False, allowed=False, missing="keys") is None
    assert check_binding("0.0.0.0", protected=True, allowed=False, missing="keys") is None
    with pytest.raises(UnsafeBinding, match="EASEL_ALLOW_UNAUTHENTICATED"):
        check_binding("0.0.0.0", protected=False, allowed=False, missing="keys")
    warning = check_binding("0.0.0.0", protected=False, allowed=True, missing="keys")
    assert warning is not None and "without keys" in warning
