"""The gateway's view of the keys: which callers a presented key stands for.

Keys come from the keys file (compared by keyed hash) and from EASEL_API_KEYS (compared by
SHA-256); every comparison is `hmac.compare_digest`, so its time does not tell how much
of a guess was right. The file is looked at (one `stat`) at most once a second and re-read
when it changed, so `easel keys revoke` reaches a running server without a restart. A key
once verified is remembered until the file changes: a request with a known key costs a
dictionary lookup, not a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from easel.core.identity import ALL_SCOPES, USER_SCOPES, Caller
from easel.gateway.auth.keyfile import KeyFileError, KeyRecord, read_records
from easel.gateway.auth.tokens import env_key_name, key_digest, key_id_of, read_pepper

log = logging.getLogger("easel.gateway.auth")

RELOAD_INTERVAL = 1.0  # seconds between looks at the keys file
CACHE_SIZE = 1024  # verified keys remembered; more (never in practice) starts over

_Signature = tuple[int, int, int] | None  # inode, mtime, size; None: no file


def _signature(path: Path) -> _Signature:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # an unreadable folder, ...: refresh logs it, requests go on
        raise KeyFileError(f"cannot look at {path}: {exc}") from exc
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _sha256(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class _FileKey:
    record: KeyRecord
    caller: Caller


class KeyStore:
    """Verifies presented keys against the keys file and `env_keys`."""

    def __init__(
        self,
        keys_path: Path,
        pepper_path: Path,
        *,
        pepper: bytes | None = None,
        env_keys: Iterable[str] = (),
        env_admin_keys: Iterable[str] = (),
        default_max_jobs: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys_path = keys_path
        self.pepper_path = pepper_path
        self._pepper = pepper
        self._default_max_jobs = default_max_jobs
        # Compared by SHA-256, so that every compare has the same length to go through.
        admin = dict.fromkeys(env_admin_keys)
        self._env = [
            (_sha256(key), Caller(env_key_name(key), USER_SCOPES, default_max_jobs))
            for key in dict.fromkeys(env_keys)
            if key not in admin
        ] + [
            (_sha256(key), Caller(env_key_name(key), ALL_SCOPES, default_max_jobs)) for key in admin
        ]
        self._clock = clock
        self._by_id: dict[str, _FileKey] = {}
        self._cache: dict[str, Caller] = {}
        self._seen: _Signature | object = object()  # never equal: the first look reads
        self._next_look = float("-inf")
        # Once on, keys stay on: revoking the last key locks everyone out rather than
        # opening the server to all.
        self._ever_enabled = bool(self._env)

    @property
    def enabled(self) -> bool:
        return self._ever_enabled

    def load(self) -> None:
        """Read the file now; KeyFileError when it is unreadable or its pepper is missing
        (at start-up: better not to start than to refuse every key)."""
        self._next_look = self._clock() + RELOAD_INTERVAL
        signature = _signature(self.keys_path)
        records = read_records(self.keys_path)
        if records and self._pepper is None:
            self._pepper = read_pepper(self.pepper_path)
            if self._pepper is None:
                raise KeyFileError(
                    f"{self.keys_path} lists keys but their pepper {self.pepper_path} is "
                    "missing (or set EASEL_KEY_PEPPER)"
                )
        self._by_id = {record.id: _FileKey(record, self._caller_of(record)) for record in records}
        self._cache.clear()
        self._seen = signature
        self._ever_enabled = self._ever_enabled or bool(records)

    def refresh(self) -> None:
        """Re-read the file if it changed; at most one `stat` a second. A file that
        cannot be read keeps the keys read before, and says so in the log."""
        now = self._clock()
        if now < self._next_look:
            return
        self._next_look = now + RELOAD_INTERVAL
        try:
            if _signature(self.keys_path) == self._seen:
                return
            self.load()
        except (KeyFileError, ValueError) as exc:
            log.error("keys file not reloaded, the keys read before still apply: %s", exc)

    def verify(self, key: str) -> Caller | None:
        """The caller `key` stands for, or None (unknown or revoked)."""
        caller = self._cache.get(key)
        if caller is not None:
            return caller
        caller = self._check(key)
        if caller is not None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = caller
        return caller

    def _check(self, key: str) -> Caller | None:
        found: Caller | None = None
        key_id = key_id_of(key)
        entry = self._by_id.get(key_id) if key_id is not None else None
        if entry is not None and self._pepper is not None:
            if hmac.compare_digest(key_digest(self._pepper, key), entry.record.digest):
                found = entry.caller
        presented = _sha256(key)
        for candidate, caller in self._env:  # every one, so the time tells nothing
            if hmac.compare_digest(candidate, presented) and found is None:
                found = caller
        return found

    def _caller_of(self, record: KeyRecord) -> Caller:
        jobs = record.max_concurrent_jobs
        return Caller(
            name=record.name,
            scopes=record.scopes,
            max_concurrent_jobs=jobs if jobs is not None else self._default_max_jobs,
            requests_per_minute=record.requests_per_minute,
        )
