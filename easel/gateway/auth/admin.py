"""`easel keys create | list | revoke`: changes to the keys file, each under a lock so two
commands at once cannot lose an entry, and each written to the audit log."""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from easel.core.audit import audit
from easel.core.identity import ApiScope
from easel.gateway.auth.keyfile import KeyFileError, KeyRecord, read_records, write_records
from easel.gateway.auth.metrics import ANONYMOUS_LABEL, SCRAPER_LABEL, UNKNOWN_LABEL
from easel.gateway.auth.tokens import ENV_KEY_PREFIX, ensure_pepper, key_digest, new_key

RESERVED_NAMES = frozenset({ANONYMOUS_LABEL, UNKNOWN_LABEL, SCRAPER_LABEL})


@dataclass(frozen=True)
class KeyAdmin:
    """The keys file at `keys_path`; hashes keyed with `pepper` when configured, else
    with the pepper file (created by the first key)."""

    keys_path: Path
    pepper_path: Path
    pepper: bytes | None = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.keys_path.parent.mkdir(parents=True, exist_ok=True)
        with self.keys_path.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def records(self) -> list[KeyRecord]:
        return read_records(self.keys_path)

    def create(
        self,
        name: str,
        scopes: Iterable[ApiScope],
        *,
        max_concurrent_jobs: int | None = None,
        requests_per_minute: int | None = None,
    ) -> tuple[KeyRecord, str]:
        """The new entry and the key itself, which is kept nowhere: show it once."""
        chosen = frozenset(scopes)
        if not name or not chosen:
            raise KeyFileError("a key needs a name and at least one scope")
        if name in RESERVED_NAMES or name.startswith(ENV_KEY_PREFIX):
            # A job belongs to a key by name: these stand for someone else already.
            raise KeyFileError(
                f"{name!r} is reserved (anonymous, unknown, metrics-scraper and names "
                f"starting {ENV_KEY_PREFIX!r} stand for other callers): choose another name"
            )
        with self._locked():
            records = read_records(self.keys_path)
            if any(record.name == name for record in records):
                raise KeyFileError(f"a key named {name!r} exists already; revoke it first")
            pepper = self.pepper or ensure_pepper(self.pepper_path)
            key_id, key = new_key()
            record = KeyRecord(
                id=key_id,
                name=name,
                digest=key_digest(pepper, key),
                scopes=chosen,
                created=datetime.now(UTC),
                max_concurrent_jobs=max_concurrent_jobs,
                requests_per_minute=requests_per_minute,
            )
            write_records(self.keys_path, [*records, record])
        audit("key_create", key=name, outcome="done", scopes=",".join(sorted(chosen)))
        return record, key

    def revoke(self, name: str) -> KeyRecord:
        """Removes the entry; a running gateway refuses the key within about a second."""
        with self._locked():
            records = read_records(self.keys_path)
            found = [record for record in records if record.name == name]
            if not found:
                raise KeyFileError(f"no key named {name!r}")
            write_records(self.keys_path, [r for r in records if r.name != name])
        audit("key_revoke", key=name, outcome="done")
        return found[0]
