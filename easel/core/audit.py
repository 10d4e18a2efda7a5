"""The audit log: one line per refused request and per admin action, on its own logger
(`easel.audit`) so that an operator can route it apart from access lines."""

from __future__ import annotations

import logging

audit_log = logging.getLogger("easel.audit")


def audit(action: str, *, key: str | None, outcome: str, **details: object) -> None:
    """`action`: what was tried (`auth`, `rate_limit`, `origin`, `list_all_jobs`, ...);
    `key`: the key's name (None when none was given); `outcome`: `refused`/`allowed`/..."""
    shown = " ".join(f"{name}={value}" for name, value in details.items())
    audit_log.info(
        "audit %s %s key=%s%s",
        action,
        outcome,
        key or "-",
        f" {shown}" if shown else "",
        extra={"audit": action, "outcome": outcome, "key_name": key, **details},
    )
