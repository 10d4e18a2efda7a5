"""The pod's internal token: every process of a pod shares one, so that its services answer
only each other and the gateway, even on loopback (another user of the machine, or a web
page's request to localhost, cannot call them around the gateway).

EASEL_INTERNAL_TOKEN when set; otherwise one generated at the first `easel up` and kept in
the run directory (`internal-token`, mode 0600), so that processes the watchdog restarts
and those a later `easel up` starts beside running ones all hold the same. Delete the file
with the pod down to get a new one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from easel.compose.settings import EaselSettings
from easel.core.internal_guard import configured_token
from easel.pod.plan import PlanError

TOKEN_FILE = "internal-token"  # noqa: S105 (a file name, not a secret)
ENV_NAME = "EASEL_INTERNAL_TOKEN"


@dataclass(frozen=True)
class PodToken:
    value: str
    source: str  # where it comes from, for `easel status`


def token_path(settings: EaselSettings) -> Path:
    return settings.pod.run_dir / TOKEN_FILE


def pod_token(settings: EaselSettings) -> PodToken:
    """The configured token, or the pod's own (made now if there is none yet)."""
    configured = configured_token(settings.shared)
    if configured is not None:
        return PodToken(configured, ENV_NAME)
    path = token_path(settings)
    return PodToken(_read_or_create(path), str(path))


def describe_token(settings: EaselSettings) -> str:
    """One line for `easel status`: where the pod's token comes from (never the token)."""
    if configured_token(settings.shared) is not None:
        return f"internal token: from {ENV_NAME}; services answer only the pod's processes"
    path = token_path(settings)
    if path.exists():
        return f"internal token: generated for this pod, in {path} (mode 0600)"
    return f"internal token: none yet; `easel up` generates one in {path}"


def _read_or_create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside, then linked into place: never seen half-written, and of two
        # `easel up`s racing, one link wins and both read what it holds.
        draft = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    token = path.read_text().strip()
    if not token:
        raise PlanError(f"{path} is empty: delete it (with the pod down) to get a new token")
    return token
