"""The key store and the keys file up close: constant-time compares, no key in clear on
disk, re-reading the file when it changes (on an injected clock), and the caller each
request runs as."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from easel.core.identity import ALL_SCOPES, ANONYMOUS, USER_SCOPES, ApiScope, Caller, current_caller
from easel.gateway.auth.admin import KeyAdmin
from easel.gateway.auth.keyfile import KeyFileError
from easel.gateway.auth.metrics import AuthMetrics
from easel.gateway.auth.middleware import ApiKeyMiddleware, presented_key
from easel.gateway.auth.policy import AccessPolicy
from easel.gateway.auth.store import RELOAD_INTERVAL, KeyStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admin_in(tmp_path: Path) -> KeyAdmin:
    return KeyAdmin(tmp_path / "keys.json", tmp_path / "keys.pepper")


def store_of(admin: KeyAdmin, **kwargs: Any) -> KeyStore:
    store = KeyStore(admin.keys_path, admin.pepper_path, **kwargs)
    store.load()
    return store


def test_the_keys_file_never_holds_a_key(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    keys = [admin.create(f"k{i}", [ApiScope.JOBS])[1] for i in range(3)]
    stored = admin.keys_path.read_text() + admin.pepper_path.read_text()
    for key in keys:
        secret = key.split("_", 2)[2]
        assert key not in stored and secret not in stored
    for path in (admin.keys_path, admin.pepper_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(tmp_path.glob(".keys.json.*"))  # no temporary file left behind


def test_a_configured_pepper_is_used_and_no_file_is_made(tmp_path: Path) -> None:
    admin = KeyAdmin(tmp_path / "keys.json", tmp_path / "keys.pepper", pepper=b"configured")
    _, key = admin.create("ci", [ApiScope.JOBS])
    assert not admin.pepper_path.exists()
    assert store_of(admin, pepper=b"configured").verify(key) is not None
    assert store_of(admin, pepper=b"another").verify(key) is None


def test_keys_are_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = admin_in(tmp_path)
    _, key = admin.create("ci", [ApiScope.JOBS])
    store = store_of(admin, env_keys=["plain-key"])
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert store.verify(key) is not None  # the file's hash, then every env key
    assert store.verify("plain-key") is not None
    assert store.verify(key[:-1] + "x") is None
    digest = admin.records()[0].digest
    assert any(b == digest for _, b in compared)
    plain = hashlib.sha256(b"plain-key").digest()  # the same length, whatever is sent
    assert (plain, plain) in compared
    # A verified key is remembered: no compare (nor hash) for it again.
    before = len(compared)
    assert store.verify(key) is not None
    assert len(compared) == before


def test_environment_keys_are_named_by_a_short_hash_and_lack_admin(tmp_path: Path) -> None:
    store = store_of(admin_in(tmp_path), env_keys=["k-one", "k-two"], default_max_jobs=3)
    caller = store.verify("k-one")
    assert caller is not None and caller.scopes == USER_SCOPES
    assert caller.name.startswith("key-") and len(caller.name) == 12
    assert caller.max_concurrent_jobs == 3
    assert store.verify("k-two") != caller
    assert store.enabled


def test_a_keys_limits_reach_its_caller(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    _, limited = admin.create(
        "a", [ApiScope.GENERATE], max_concurrent_jobs=2, requests_per_minute=9
    )
    _, plain = admin.create("b", [ApiScope.GENERATE])
    store = store_of(admin, default_max_jobs=5)
    assert store.verify(limited) == Caller("a", frozenset({ApiScope.GENERATE}), 2, 9)
    assert store.verify(plain) == Caller("b", frozenset({ApiScope.GENERATE}), 5, None)


def test_a_change_to_the_file_is_seen_within_a_second(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    clock = Clock()
    store = KeyStore(admin.keys_path, admin.pepper_path, clock=clock)
    store.refresh()
    assert not store.enabled
    _, key = admin.create("ci", [ApiScope.JOBS])
    store.refresh()  # within the interval: not looked at yet
    assert store.verify(key) is None and not store.enabled
    clock.now += RELOAD_INTERVAL
    store.refresh()
    assert store.enabled and store.verify(key) is not None
    admin.revoke("ci")
    clock.now += RELOAD_INTERVAL
    store.refresh()
    assert store.verify(key) is None  # the cache went with the old file
    # Revoking the last key does not open the server: keys stay on, nobody gets in.
    assert store.enabled


def test_an_unreadable_file_keeps_the_keys_read_before(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    clock = Clock()
    _, key = admin.create("ci", [ApiScope.JOBS])
    store = KeyStore(admin.keys_path, admin.pepper_path, clock=clock)
    store.load()
    admin.keys_path.write_text("{not json")
    clock.now += RELOAD_INTERVAL
    store.refresh()
    assert store.verify(key) is not None
    with pytest.raises(KeyFileError, match="cannot read the keys file"):
        store.load()


def test_keys_without_their_pepper_stop_the_start(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    admin.create("ci", [ApiScope.JOBS])
    admin.pepper_path.unlink()
    with pytest.raises(KeyFileError, match="pepper"):
        KeyStore(admin.keys_path, admin.pepper_path).load()


def test_names_are_unique_and_revoking_needs_a_known_one(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    admin.create("ci", [ApiScope.JOBS])
    with pytest.raises(KeyFileError, match="exists already"):
        admin.create("ci", [ApiScope.GENERATE])
    with pytest.raises(KeyFileError, match="no key named"):
        admin.revoke("nope")
    assert [r.name for r in admin.records()] == ["ci"]


def http_scope(path: str, *headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": list(headers)}


def test_the_key_is_read_from_either_header() -> None:
    assert presented_key(http_scope("/", (b"x-api-key", b" k1 "))) == ("X-API-Key", "k1")
    assert presented_key(http_scope("/", (b"authorization", b"Bearer k2"))) == (
        "Authorization",
        "k2",
    )
    assert presented_key(http_scope("/", (b"authorization", b"bearer  k3"))) == (
        "Authorization",
        "k3",
    )
    assert presented_key(http_scope("/", (b"authorization", b"Basic xx"))) == (
        "Authorization",
        None,
    )
    assert presented_key(http_scope("/")) == ("Authorization", None)
    # An empty X-API-Key is no key: the Authorization beside it counts.
    empty_then_bearer = http_scope("/", (b"x-api-key", b" "), (b"authorization", b"Bearer k4"))
    assert presented_key(empty_then_bearer) == ("Authorization", "k4")


@pytest.mark.parametrize("name", ["anonymous", "unknown", "metrics-scraper", "key-1a2b3c4d"])
def test_names_that_stand_for_other_callers_are_refused(tmp_path: Path, name: str) -> None:
    # A job belongs to a key by its name: these would inherit someone else's jobs.
    with pytest.raises(KeyFileError, match="reserved"):
        admin_in(tmp_path).create(name, [ApiScope.JOBS])


def test_a_keys_file_that_cannot_be_looked_at_keeps_the_keys_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = admin_in(tmp_path).create("ci", [ApiScope.JOBS])[1]
    now = [0.0]
    store = KeyStore(tmp_path / "keys.json", tmp_path / "keys.pepper", clock=lambda: now[0])
    store.load()

    def refused(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("easel.gateway.auth.store.os.stat", refused)
    now[0] += RELOAD_INTERVAL + 1
    store.refresh()  # not an exception on the request: the keys read before still apply
    assert store.verify(key) is not None


async def run_as(middleware_store: KeyStore, scope: Scope, default_max_jobs: int | None) -> Any:
    """The caller the app behind the middleware sees, or the status it answered."""
    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen["caller"] = current_caller()
        seen["headers"] = dict(scope["headers"])

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    middleware = ApiKeyMiddleware(
        inner,
        store=middleware_store,
        policy=AccessPolicy(),
        metrics=AuthMetrics(CollectorRegistry()),
        default_max_jobs=default_max_jobs,
    )
    await middleware(scope, receive, send)
    # The key stays at the edge: nothing behind it (the proxy, a service) sees it.
    assert not {b"authorization", b"x-api-key"} & set(seen.get("headers", {}))
    return seen.get("caller", seen.get("status"))


async def test_each_request_runs_as_its_caller_and_only_it(tmp_path: Path) -> None:
    admin = admin_in(tmp_path)
    off = store_of(admin)
    anyone = Caller(ANONYMOUS, ALL_SCOPES, 4)
    assert await run_as(off, http_scope("/api/jobs"), 4) == anyone
    assert await run_as(off, http_scope("/", (b"authorization", b"Bearer x")), 4) == anyone
    _, key = admin.create("ci", [ApiScope.JOBS], requests_per_minute=30)
    on = store_of(admin, default_max_jobs=4)  # the key sets none: the gateway's default
    as_key = await run_as(on, http_scope("/api/jobs", (b"x-api-key", key.encode())), 4)
    assert as_key == Caller("ci", frozenset({ApiScope.JOBS}), 4, 30)
    public = await run_as(on, http_scope("/api/health"), None)
    assert public.name == ANONYMOUS and not public.scopes
    assert await run_as(on, http_scope("/api/jobs"), None) == 401
    assert current_caller().name == ANONYMOUS  # reset after each request
