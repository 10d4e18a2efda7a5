"""The keys file: one JSON document of named entries (scopes, limits, creation time and
the key's keyed hash, never the key), replaced atomically and readable only by its owner.

```json
{"keys": [{"id": "1a2b3c4d5e6f", "name": "ci", "hash": "<hex>", "scopes": ["jobs"],
           "max_concurrent_jobs": null, "requests_per_minute": 60, "created": "..."}]}
```
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from easel.core.identity import ApiScope


class KeyFileError(ValueError):
    """The keys file cannot be read, or an operation on it makes no sense."""


@dataclass(frozen=True)
class KeyRecord:
    """One key as the file keeps it."""

    id: str
    name: str
    digest: str
    scopes: frozenset[ApiScope]
    created: datetime
    max_concurrent_jobs: int | None = None
    requests_per_minute: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "hash": self.digest,
            "scopes": sorted(self.scopes),
            "max_concurrent_jobs": self.max_concurrent_jobs,
            "requests_per_minute": self.requests_per_minute,
            "created": self.created.isoformat(),
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> KeyRecord:
        return cls(
            id=str(entry["id"]),
            name=str(entry["name"]),
            digest=str(entry["hash"]),
            scopes=frozenset(ApiScope(s) for s in entry["scopes"]),
            created=datetime.fromisoformat(entry["created"]),
            max_concurrent_jobs=_optional_int(entry.get("max_concurrent_jobs")),
            requests_per_minute=_optional_int(entry.get("requests_per_minute")),
        )


def _optional_int(value: object) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"not a whole number: {value!r}")


def read_records(path: Path) -> list[KeyRecord]:
    """The file's entries; none when it does not exist."""
    try:
        document = json.loads(path.read_text())
        return [KeyRecord.from_json(entry) for entry in document["keys"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"cannot read the keys file {path}: {exc}") from None


def write_records(path: Path, records: list[KeyRecord]) -> None:
    """Replace the file at once (a temporary file renamed over it), mode 0600, so a
    server re-reading it sees the old entries or the new ones, never half of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"keys": [r.to_json() for r in records]}, indent=2) + "\n"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
