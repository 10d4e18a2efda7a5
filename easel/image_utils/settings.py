"""The image-utils service's settings: today only what every service shares (the image
codec's limits, the body limit); its own knobs go here."""

from __future__ import annotations

from easel.core.settings import SharedSettings


class ImageUtilsSettings(SharedSettings):
    pass
