"""Links to stored images (`/api/images/{sha256}.{ext}`), signed so that they expire.

Whoever makes a link (the generation service for a synchronous request, the job manager
for a job's result) signs it whenever a link secret is configured; the gateway checks a
signature only when API keys are on, and then lets a request with a valid, unexpired one
through without a key: that is what lets an `<img src>` in a browser show the image.
The signature is an HMAC-SHA256 over the path and the expiry, so a link names one image
until one moment and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlencode

from easel.core.images import OutputFormat
from easel.core.settings import SharedSettings

IMAGES_PREFIX = "/api/images/"
# What the secret is derived for when it comes from the internal token: the token
# itself never signs anything a client sees.
_DERIVATION = b"easel image links v1"


def image_path(digest: str, fmt: OutputFormat) -> str:
    """The public path of a stored image: the extension is its format's name."""
    return f"{IMAGES_PREFIX}{digest}.{fmt.value}"


class LinkCheck(StrEnum):
    UNSIGNED = "unsigned"  # no signature at all: the request needs a key
    VALID = "valid"
    EXPIRED = "expired"
    FORGED = "forged"  # a signature that does not match (or no secret to check it by)


@dataclass(frozen=True)
class ImageLinks:
    """Makes and checks image links. `secret` None: links are unsigned (and a signed one
    cannot be checked)."""

    secret: bytes | None
    ttl_s: float = 3600.0
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @classmethod
    def from_settings(cls, settings: SharedSettings) -> ImageLinks:
        return cls(secret=link_secret(settings), ttl_s=settings.image_link_ttl)

    def link(self, digest: str, fmt: OutputFormat) -> str:
        """The path of the image, with `?expires=&sig=` when there is a secret."""
        path = image_path(digest, fmt)
        if self.secret is None:
            return path
        expires = int(self.clock() + self.ttl_s)
        return f"{path}?{urlencode({'expires': expires, 'sig': self._sign(path, expires)})}"

    def check(self, path: str, expires: str | None, sig: str | None) -> LinkCheck:
        """Whether the query of a request for `path` carries a valid signature."""
        if expires is None and sig is None:
            return LinkCheck.UNSIGNED
        if self.secret is None or expires is None or sig is None or not expires.isdigit():
            return LinkCheck.FORGED
        if not hmac.compare_digest(self._sign(path, int(expires)), sig):
            return LinkCheck.FORGED
        if int(expires) < self.clock():
            return LinkCheck.EXPIRED
        return LinkCheck.VALID

    def _sign(self, path: str, expires: int) -> str:
        assert self.secret is not None
        message = f"{path}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def link_secret(settings: SharedSettings) -> bytes | None:
    """EASEL_IMAGE_LINK_SECRET; else one derived from EASEL_INTERNAL_TOKEN (which every
    process of a deployment shares already); else None: links are not signed."""
    if settings.image_link_secret is not None and settings.image_link_secret.get_secret_value():
        return settings.image_link_secret.get_secret_value().encode()
    token = settings.internal_token.get_secret_value() if settings.internal_token else ""
    if not token:
        return None
    return hmac.new(token.encode(), _DERIVATION, hashlib.sha256).digest()
