"""What the command line needs of the gateway's API keys: the keys file of these settings
(`easel keys`) and the start-up rule for `easel serve` (all or gateway)."""

from __future__ import annotations

from easel.compose.settings import EaselSettings
from easel.gateway.auth.admin import KeyAdmin
from easel.gateway.auth.config import check_gateway_binding, key_admin
from easel.gateway.auth.keyfile import KeyFileError, KeyRecord

__all__ = ["KeyAdmin", "KeyFileError", "KeyRecord", "check_serving", "keys_of"]


def keys_of(settings: EaselSettings) -> KeyAdmin:
    return key_admin(settings.gateway)


def check_serving(settings: EaselSettings, host: str) -> str | None:
    """See `easel.gateway.auth.config.check_gateway_binding`."""
    return check_gateway_binding(settings.gateway, host)
