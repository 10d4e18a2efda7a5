"""The job manager's check of a request at submit: the generation service judges it
(`POST /api/generate/validate`: its styles, models, engine parameters and limits), so a
job it would refuse is refused now, with its 422, rather than queued to fail later.

When the generation service cannot answer (unreachable, 5xx, slow), the job is accepted
on the schema alone: a brief outage must not refuse work. Should it then be refused when
it runs, it fails as invalid input, without another attempt (see worker.py)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from easel.core.errors import EaselError, InvalidInput, PayloadTooLarge

log = logging.getLogger("easel.jobs.validation")

PATH = "/api/generate/validate"
_REFUSALS: dict[int, type[EaselError]] = {422: InvalidInput, 413: PayloadTooLarge}


class GenerationCheck:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def __call__(self, request: dict[str, Any]) -> None:
        """Raise the generation service's own refusal of `request`, if it refuses it."""
        try:
            response = await self.client.post(PATH, json=request, timeout=self.timeout)
        except httpx.HTTPError as exc:
            log.warning("accepted a job unchecked: generation did not answer (%r)", exc)
            return
        refusal = _REFUSALS.get(response.status_code)
        if refusal is None:
            if response.status_code != 200:
                log.warning(
                    "accepted a job unchecked: generation answered %d", response.status_code
                )
            return
        try:
            error = dict(response.json()["error"])
        except (ValueError, KeyError, TypeError):
            error = {"message": response.text[:500]}
        raise refusal(str(error.get("message", "invalid request")), details=error.get("details"))
