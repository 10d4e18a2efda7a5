"""What an API key looks like and how it is kept: `easel_<id>_<secret>`, stored as an
HMAC-SHA256 under a server secret (the pepper), so that a copy of the keys file alone
neither reveals a key nor lets anyone test guesses against it offline.

The id is public (it lets the store find the one entry to compare against); the secret is
256 random bits, so one keyed hash is all the protection a key needs: no slow derivation.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

PREFIX = "easel"
ID_BYTES = 6  # 12 hex characters: unique among the keys of one server, and short in logs
SECRET_BYTES = 32


def new_key() -> tuple[str, str]:
    """A fresh key and its id."""
    key_id = secrets.token_hex(ID_BYTES)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def key_id_of(key: str) -> str | None:
    """The id of a key in the generated format, else None (the secret may hold `_`)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 2 * ID_BYTES:
        return None
    return parts[1]


def key_digest(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


ENV_KEY_PREFIX = "key-"


def env_key_name(key: str) -> str:
    """The name of a key from EASEL_API_KEYS: a short hash of it, stable across restarts,
    so logs and metrics can tell keys apart without showing them."""
    return ENV_KEY_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:8]


def read_pepper(path: Path) -> bytes | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path} does not hold a pepper (hex text)") from None


def ensure_pepper(path: Path) -> bytes:
    """The pepper in `path`, created (mode 0600, never replaced) when there is none."""
    existing = read_pepper(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    pepper = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `easel keys create` made it first: use that one
        return ensure_pepper(path)
    with os.fdopen(fd, "w") as file:
        file.write(pepper.hex() + "\n")
    return pepper
