"""The auth parts built from the gateway's settings: the key store, the access policy,
the admin of the keys file (for `easel keys`), and the start-up rule for the bind address."""

from __future__ import annotations

from pydantic import SecretStr

from easel.core.binding import check_binding
from easel.gateway.auth.admin import KeyAdmin
from easel.gateway.auth.policy import AccessPolicy
from easel.gateway.auth.store import KeyStore
from easel.gateway.settings import GatewaySettings


def _pepper(settings: GatewaySettings) -> bytes | None:
    secret = settings.key_pepper
    return secret.get_secret_value().encode() if secret is not None else None


def env_keys(setting: SecretStr | None) -> list[str]:
    """The keys of a comma-separated setting (EASEL_API_KEYS, EASEL_ADMIN_API_KEYS)."""
    text = setting.get_secret_value() if setting is not None else ""
    return [key.strip() for key in text.split(",") if key.strip()]


def key_store(settings: GatewaySettings) -> KeyStore:
    return KeyStore(
        settings.keys_path,
        settings.pepper_path,
        pepper=_pepper(settings),
        env_keys=env_keys(settings.api_keys),
        env_admin_keys=env_keys(settings.admin_api_keys),
        default_max_jobs=settings.max_concurrent_jobs,
    )


def access_policy(settings: GatewaySettings) -> AccessPolicy:
    token = settings.metrics_token
    return AccessPolicy(
        public_docs=settings.public_docs,
        public_metrics=settings.public_metrics,
        public_health=settings.public_health,
        metrics_token=token.get_secret_value() if token is not None else None,
    )


def key_admin(settings: GatewaySettings) -> KeyAdmin:
    return KeyAdmin(settings.keys_path, settings.pepper_path, pepper=_pepper(settings))


def check_gateway_binding(settings: GatewaySettings, host: str) -> str | None:
    """Before `easel serve` (all or gateway) listens on `host`: None when fine, a warning
    to log when it serves beyond loopback without keys because EASEL_ALLOW_UNAUTHENTICATED
    says so; `easel.core.binding.UnsafeBinding` (and no start) otherwise. KeyFileError
    when the keys file cannot be read."""
    store = key_store(settings)
    store.load()
    return check_binding(
        host,
        protected=store.enabled,
        allowed=settings.allow_unauthenticated,
        missing="API keys (`easel keys create`, or EASEL_API_KEYS)",
        who="the gateway",
    )
