"""Model weights fetched into MODELS_PATH ahead of time, where the services read them:
Modal's `download_weights` (into the models Volume), or any machine with a network.

A hub model goes to `MODELS_PATH/<hub id>`, the folder generation looks for first (so it
loads with no hub traffic at all); FastSAM's weights to the file segmentation reads. What
is complete there already is skipped without a network call. No ML library is imported:
the machine that downloads has none.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field

from easel.compose.settings import EaselSettings
from easel.core.settings import EaselSettingsBase, env
from easel.generation.engines.diffusers.hub import HubReach
from easel.generation.engines.diffusers.models import BUILTIN_SOURCE
from easel.generation.pulled import configured_models
from easel.generation.settings import GenerationSettings
from easel.segmentation.segmenters import weights_path
from easel.segmentation.segmenters.sam2_tiny import TINY_SAM2
from easel.segmentation.settings import SegmentationSettings

MARKER = ".easel-weights.json"  # written last: a folder without it is incomplete
FASTSAM = "fastsam"
SAM2 = "sam2"  # the segmentation model EASEL_SAM2_MODEL names
Report = Callable[[str], None]


class WeightsSettings(EaselSettingsBase):
    # Where FastSAM weight files are published (ultralytics' release assets).
    fastsam_weights_url: str = Field(
        "https://github.com/ultralytics/assets/releases/download/v8.3.0",
        validation_alias=env("FASTSAM_WEIGHTS_URL"),
    )
    weights_timeout: float = Field(60.0, gt=0, validation_alias=env("WEIGHTS_TIMEOUT"))


class WeightsError(Exception):
    """What could not be fetched and why, in one line."""


@dataclass(frozen=True)
class WeightsItem:
    name: str  # as asked: "qwen-image-edit", "fastsam", ...
    kind: Literal["hub", "file", "builtin", "folder"]
    source: str  # hub id, URL, "builtin:..." or the folder
    destination: Path
    present: bool  # complete there already: skipped

    def describe(self) -> str:
        if self.kind == "builtin":
            return f"{self.name}: built locally from code, nothing to fetch"
        if self.present:
            return f"skip {self.name}: already in {self.destination}"
        return f"would fetch {self.name}: {self.source} -> {self.destination}"


def _generation_item(name: str, generation: GenerationSettings) -> WeightsItem:
    spec = configured_models(generation)[name]  # pulled ones too
    if spec.source.startswith(BUILTIN_SOURCE):
        return WeightsItem(name, "builtin", spec.source, generation.models_path / name, True)
    return _model_item(name, spec.source, generation.models_path)


def _sam2_item(segmentation: SegmentationSettings) -> WeightsItem:
    source = segmentation.sam2_model
    if source == TINY_SAM2:
        return WeightsItem(SAM2, "builtin", source, segmentation.models_path / SAM2, True)
    return _model_item(SAM2, source, segmentation.models_path)


def _model_item(name: str, source_text: str, models: Path) -> WeightsItem:
    """A hub id (fetched into MODELS_PATH/<hub id>) or a folder the user provides."""
    source = Path(source_text).expanduser()
    folder = source if source.is_absolute() else models / source
    if (
        source.is_absolute()
        or source_text.startswith(".")
        or (folder.is_dir() and not (folder / MARKER).is_file() and not _partial(folder).exists())
    ):
        # A folder the user put there (or must): nothing on the hub to fetch it from.
        return WeightsItem(name, "folder", source_text, folder, present=folder.is_dir())
    return WeightsItem(name, "hub", source_text, folder, present=(folder / MARKER).is_file())


def _fastsam_item(segmentation: SegmentationSettings, url_base: str) -> WeightsItem:
    path = weights_path(segmentation)
    url = f"{url_base.rstrip('/')}/{path.name}"
    return WeightsItem(FASTSAM, "file", url, path, present=path.is_file())


def plan_downloads(
    generation: GenerationSettings,
    segmentation: SegmentationSettings,
    names: Sequence[str],
    *,
    fastsam_url: str | None = None,
) -> list[WeightsItem]:
    """What `names` need (none: the default generation model, and the segmenter's weights:
    SAM 2's with `sam2`, FastSAM's unless segmentation runs GrabCut). An unknown name is a
    WeightsError listing the known ones."""
    url_base = fastsam_url or WeightsSettings().fastsam_weights_url
    known = sorted(configured_models(generation))
    fastsam_names = {FASTSAM, segmentation.fastsam_weights.name}
    wanted = list(names) or [generation.generation_model]
    if not names and segmentation.segmentation_model == "sam2":
        wanted.append(SAM2)
    elif not names and segmentation.segmentation_model != "grabcut":
        wanted.append(FASTSAM)
    items: dict[Path, WeightsItem] = {}  # one per destination, however it was named
    for name in wanted:
        if name in fastsam_names:
            item = _fastsam_item(segmentation, url_base)
        elif name == SAM2:
            item = _sam2_item(segmentation)
        elif name in known:
            item = _generation_item(name, generation)
        else:
            everything = ", ".join([*known, FASTSAM, SAM2])
            raise WeightsError(f"unknown model {name!r}: known are {everything}")
        items.setdefault(item.destination, item)
    return list(items.values())


def _partial(destination: Path) -> Path:
    return destination.with_name(destination.name + ".partial")


def fetch(
    items: Sequence[WeightsItem], *, token: str | None, hub: HubReach, report: Report
) -> list[WeightsItem]:
    """Fetch each missing item; the ones fetched. WeightsError (one line) on the first
    that cannot be, before any download when the hub is known to be out of reach."""
    missing = [item for item in items if not item.present and item.kind in ("hub", "file")]
    absent = [item for item in items if not item.present and item.kind == "folder"]
    if absent:
        item = absent[0]
        raise WeightsError(
            f"{item.name}'s folder {item.destination} does not exist and is not a hub id: "
            "put the model there"
        )
    hub_bound = [item for item in missing if item.kind == "hub"]
    if hub_bound and not hub.reachable():
        what = ", ".join(f"{item.name} ({item.source})" for item in hub_bound)
        raise WeightsError(f"cannot fetch {what}: {hub.why_unreachable}")
    for item in missing:
        started = time.perf_counter()
        if item.kind == "hub":
            _fetch_from_hub(item, token)
        else:
            _fetch_file(item)
        report(f"fetched {item.name} in {time.perf_counter() - started:.1f} s")
    return missing


def _fetch_from_hub(item: WeightsItem, token: str | None) -> None:
    from huggingface_hub import snapshot_download

    partial = _partial(item.destination)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Into a folder of its own first: an interrupted download is resumed there, and
        # never left where generation would take it for a model.
        snapshot_download(repo_id=item.source, local_dir=partial, token=token)
    except Exception as exc:  # the hub's errors are many; each becomes one line
        reason = " ".join(str(exc).split())[:300]
        raise WeightsError(
            f"cannot fetch {item.name} ({item.source}): {type(exc).__name__}: {reason}"
        ) from None
    if item.destination.exists():
        shutil.rmtree(item.destination)
    os.replace(partial, item.destination)
    _mark(item)


def _fetch_file(item: WeightsItem) -> None:
    partial = _partial(item.destination)
    partial.parent.mkdir(parents=True, exist_ok=True)
    timeout = WeightsSettings().weights_timeout
    try:
        with (
            httpx.stream("GET", item.source, follow_redirects=True, timeout=timeout) as answer,
            partial.open("wb") as out,
        ):
            answer.raise_for_status()
            for chunk in answer.iter_bytes():
                out.write(chunk)
    except (httpx.HTTPError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = " ".join(str(exc).split())[:300]
        raise WeightsError(f"cannot fetch {item.name} ({item.source}): {reason}") from None
    os.replace(partial, item.destination)


def _mark(item: WeightsItem) -> None:
    marker = {"source": item.source, "fetched_at": time.time()}
    (item.destination / MARKER).write_text(json.dumps(marker))


def download_main(names: Sequence[str], *, report: Report = print) -> list[WeightsItem]:
    """Plan from the environment's settings, say the plan, fetch. huggingface_hub reads
    HF_TOKEN (and HF_ENDPOINT, HF_HUB_OFFLINE) itself."""
    settings = EaselSettings.load()
    generation = settings.generation
    items = plan_downloads(generation, settings.segmentation, names)
    for item in items:
        report(item.describe())
    hub = HubReach.from_hub_settings(
        timeout_s=generation.generation_hub_timeout, recheck_s=generation.generation_hub_recheck
    )
    return fetch(items, token=None, hub=hub, report=report)
