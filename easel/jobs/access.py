"""Who may see which job: its owner (the key that submitted it), and admin keys.

A job of another owner is answered as unknown (404), never as forbidden, so that a key
cannot even learn that an id exists. What an admin does across owners is audited.
"""

from __future__ import annotations

from collections.abc import Iterable

from easel.core.audit import audit
from easel.core.errors import Forbidden
from easel.core.identity import Caller
from easel.jobs.models import Job


def may_see(caller: Caller, job: Job) -> bool:
    """The owner sees its job; an admin sees every job (and is audited: `opened`)."""
    return job.owner == caller.name or caller.is_admin


def opened(caller: Caller, job: Job, action: str) -> None:
    """Audit an admin's `action` (`read_job`, `cancel_job`) on another owner's job."""
    if job.owner != caller.name:
        audit(action, key=caller.name, outcome="allowed", task_id=job.id, owner=job.owner)


def listed_owner(caller: Caller, owner: str | None) -> str | None:
    """The owner whose jobs `caller` lists when it asks for `owner` (None: every owner).
    A key that is not admin lists its own jobs; asking for another's is a 403 naming
    `owner`, not a quiet answer about its own."""
    if caller.is_admin:
        return owner
    if owner is not None and owner != caller.name:
        raise Forbidden(
            "owner: only an admin key may list another key's jobs",
            details=[{"field": "owner", "message": "needs the admin scope"}],
        )
    return caller.name


def listed(caller: Caller, owner: str | None, jobs: Iterable[Job]) -> None:
    """Audit an admin's list that showed other owners' jobs (a list of its own jobs only,
    or of none, is not an action across owners)."""
    others = sorted({job.owner for job in jobs if job.owner != caller.name})
    if others:
        audit(
            "list_jobs",
            key=caller.name,
            outcome="allowed",
            owner=owner or "*",
            owners=",".join(others),
        )
