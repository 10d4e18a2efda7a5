"""Where the segmenters' weights are, found without a network call, and FastSAM's fetched.

SAM 2 comes from a folder (`MODELS_PATH/<hub id>`, the layout `easel download` writes, or
any folder holding `save_pretrained` output), from the local hub cache, from the hub
itself, or is built (`tiny-random`). FastSAM's official files are fetched on first use.
Without a network both refuse at once with one line: one TCP connect with a short timeout
decides (the generation service's hub probe does the same), never a library's retries.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from easel.segmentation.segmenters.sam2_tiny import TINY_SAM2
from easel.segmentation.settings import SegmentationSettings

log = logging.getLogger("easel.segmentation")

OFFICIAL_FASTSAM = ("FastSAM-s.pt", "FastSAM-x.pt")  # ultralytics' release assets
SAM2_HUB_IDS = tuple(
    f"facebook/sam2.1-hiera-{size}" for size in ("tiny", "small", "base-plus", "large")
)
Connect = Callable[[tuple[str, int], float], object]


def _connect(address: tuple[str, int], timeout: float) -> object:
    with socket.create_connection(address, timeout=timeout):
        return None


def reachable(url: str, timeout: float, connect: Connect = _connect) -> bool:
    """Whether one TCP connect to `url`'s host succeeds within `timeout` seconds."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        connect((parts.hostname or "", port), timeout)
    except OSError:  # no route, no DNS, refused, timed out: all "unreachable"
        return False
    return True


# ---- SAM 2 ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sam2Source:
    """What `Sam2Segmenter(source=...)` gets and how it was found."""

    source: str  # a folder or a hub id
    kind: Literal["builtin", "folder", "hub-cache", "hub", "no-folder"]

    @property
    def local(self) -> bool:
        """Loads with no network at all."""
        return self.kind in ("builtin", "folder", "hub-cache")


def find_sam2(settings: SegmentationSettings) -> Sam2Source:
    """The configured SAM 2 model, looked up locally only (no network call)."""
    name = settings.sam2_model
    if name == TINY_SAM2:
        return Sam2Source(str(tiny_sam2_folder(settings)), "builtin")
    path = Path(name).expanduser()
    folder = path if path.is_absolute() else settings.models_path / path
    if (folder / "config.json").is_file():
        return Sam2Source(str(folder), "folder")
    if path.is_absolute() or name.startswith(".") or name.count("/") != 1:
        return Sam2Source(str(folder), "no-folder")  # no hub id looks like that
    return Sam2Source(name, "hub-cache" if hub_cached(name) else "hub")


def tiny_sam2_folder(settings: SegmentationSettings) -> Path:
    return settings.data_dir / "models" / "sam2-tiny-random"


def hub_cached(repo_id: str) -> bool:
    """Whether the hub cache holds the model's config and weights (no network call)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # installed without the generation extra: no hub cache to read
        return False
    return all(
        isinstance(try_to_load_from_cache(repo_id, name), str)
        for name in ("config.json", "model.safetensors")
    )


def hub_unreachable(timeout: float, connect: Connect = _connect) -> str | None:
    """Why the hub cannot be reached, or None when it can: HF_HUB_OFFLINE, or one probe of
    the endpoint huggingface_hub would use (HF_ENDPOINT)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return "huggingface_hub is not installed (install the generation extra)"
    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    if not reachable(constants.ENDPOINT, timeout, connect):
        return f"the hub ({constants.ENDPOINT}) is unreachable"
    return None


def sam2_not_cached(hub_id: str, why: str) -> str:
    """One line: what failed, and the ways out."""
    return (
        f"SAM 2 model {hub_id!r} is not in the local hub cache and {why}: download it where "
        f"there is a network (`hf download {hub_id}`) and copy the hub cache (HF_HOME) here, "
        f"or put the folder at MODELS_PATH/{hub_id}; or check the path with "
        "EASEL_SAM2_MODEL=tiny-random (random weights)"
    )


# ---- FastSAM --------------------------------------------------------------------------
def fastsam_url(settings: SegmentationSettings, path: Path) -> str:
    return f"{settings.fastsam_weights_url.rstrip('/')}/{path.name}"


def fetch_fastsam(settings: SegmentationSettings, path: Path, shown: str) -> str | None:
    """Fetch a missing official FastSAM file to `path`; None when done, else one line
    saying why not and where to put the file. Never a download of an unofficial name,
    never a download attempt when the release host does not answer a probe."""
    url = fastsam_url(settings, path)
    if path.name not in OFFICIAL_FASTSAM:
        return (
            f"FastSAM weights not found at {shown}: put the file there, set "
            "EASEL_FASTSAM_WEIGHTS, or use EASEL_SEGMENTATION_MODEL=grabcut"
        )
    offline = (
        f"FastSAM weights not found at {shown} and {urlsplit(url).hostname} is unreachable: "
        f"download {url} and put it there, or use EASEL_SEGMENTATION_MODEL=grabcut"
    )
    if not reachable(url, settings.segmentation_network_timeout):
        return offline
    from easel.segmentation.segmenters.fastsam import offline_ultralytics

    offline_ultralytics(settings.data_dir / "ultralytics")
    from ultralytics.utils.downloads import safe_download

    log.info("fetching FastSAM weights %s to %s", url, shown)
    try:
        # Written aside and renamed into place once its size checks out.
        safe_download(url=url, file=path.name, dir=path.parent, unzip=False, min_bytes=1e5)
    except Exception as exc:  # requests' and ultralytics' errors are many; one line each
        reason = " ".join(str(exc).split())[:300]
        return f"FastSAM weights not found at {shown} and fetching {url} failed: {reason}"
    return None if path.is_file() else offline
