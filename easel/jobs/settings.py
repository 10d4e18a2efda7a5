"""The job manager's settings: the store, queue limits, retries and retention, workers,
and the webhooks part (`WebhookSettings`)."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from easel.core.settings import EaselSettingsBase, OutboundSettings, SharedSettings, env


class WebhookSettings(EaselSettingsBase):
    """Signed webhooks when jobs end (README, "Webhooks")."""

    # `whsec_` + base64 key (Standard Webhooks), or any string; unset: jobs with a webhook
    # are refused.
    webhook_secret: SecretStr | None = Field(None, validation_alias=env("WEBHOOK_SECRET"))
    webhook_allow_private: bool = Field(False, validation_alias=env("WEBHOOK_ALLOW_PRIVATE"))
    webhook_max_attempts: int = Field(5, ge=1, validation_alias=env("WEBHOOK_MAX_ATTEMPTS"))
    webhook_backoff: float = Field(1.0, ge=0, validation_alias=env("WEBHOOK_BACKOFF"))
    webhook_timeout: float = Field(10.0, gt=0, validation_alias=env("WEBHOOK_TIMEOUT"))

    @field_validator("webhook_secret")
    @classmethod
    def _whsec_is_base64(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if secret.startswith("whsec_"):
            try:
                base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except binascii.Error as exc:
                raise ValueError("a whsec_ secret must be followed by a base64 key") from exc
        return value


class JobsSettings(SharedSettings, WebhookSettings, OutboundSettings):
    """Everything the job manager and its workers read."""

    jobs_backend: Literal["sqlite", "redis"] = Field("sqlite", validation_alias=env("JOBS_BACKEND"))
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=env("REDIS_URL", "REDIS_URL")
    )
    # Every key of the Redis store starts with it: deployments (or tests) sharing one Redis
    # keep apart by prefix. On Redis Cluster, give it a hash tag: `{easel}`.
    jobs_redis_prefix: str = Field(
        "easel", min_length=1, max_length=100, validation_alias=env("JOBS_REDIS_PREFIX")
    )
    jobs_max_queued: int = Field(1000, ge=1, validation_alias=env("JOBS_MAX_QUEUED"))
    jobs_max_attempts: int = Field(3, ge=1, validation_alias=env("JOBS_MAX_ATTEMPTS"))
    jobs_timeout: float = Field(600.0, gt=0, validation_alias=env("JOBS_TIMEOUT"))
    jobs_retention: float = Field(7 * 86400.0, gt=0, validation_alias=env("JOBS_RETENTION"))
    jobs_heartbeat: float = Field(2.0, gt=0, validation_alias=env("JOBS_HEARTBEAT"))
    jobs_visibility_timeout: float = Field(
        30.0, gt=0, validation_alias=env("JOBS_VISIBILITY_TIMEOUT")
    )
    jobs_retry_backoff: float = Field(2.0, ge=0, validation_alias=env("JOBS_RETRY_BACKOFF"))
    # An unreachable generation service or engine uses up no attempt: a running job waits
    # up to this long (in all, per attempt) for generation's health to say it is back.
    jobs_outage_window: float = Field(300.0, gt=0, validation_alias=env("JOBS_OUTAGE_WINDOW"))
    jobs_health_poll: float = Field(1.0, gt=0, validation_alias=env("JOBS_HEALTH_POLL"))
    worker_concurrency: int = Field(1, ge=1, validation_alias=env("WORKER_CONCURRENCY"))
    # An idle worker's longest wait between looks at the store. A submit wakes it sooner:
    # any on Redis; on SQLite one in its process at once, another process's within 0.25 s.
    worker_poll_interval: float = Field(1.0, ge=0, validation_alias=env("WORKER_POLL_INTERVAL"))
    # Seconds jobs may sit queued with none running before the job manager warns that no
    # worker is alive (and again as often while it lasts).
    jobs_no_worker_warning: float = Field(
        60.0, gt=0, validation_alias=env("JOBS_NO_WORKER_WARNING")
    )
    jobs_in_process_worker: bool = Field(True, validation_alias=env("JOBS_IN_PROCESS_WORKER"))
    # Submit asks the generation service to check each request (its 422 is the submit's);
    # when it does not answer within the timeout the job is accepted on the schema alone.
    jobs_submit_check: bool = Field(True, validation_alias=env("JOBS_SUBMIT_CHECK"))
    jobs_submit_check_timeout: float = Field(
        10.0, gt=0, validation_alias=env("JOBS_SUBMIT_CHECK_TIMEOUT")
    )
