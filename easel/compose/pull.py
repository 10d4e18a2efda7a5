"""`easel models pull`: a diffusers model from the hub into `MODELS_PATH/<name>`, only the
files its pipeline needs (pull_files.py), and its catalogue entry written beside it
(easel.generation.pulled), so that `EASEL_GENERATION_MODEL=<name>` then loads it offline.

The files go through huggingface_hub's own cache (`snapshot_download`): it resumes an
interrupted download where it stopped, shows its progress bar, and, with no network (or
HF_HUB_OFFLINE), serves what is cached already. From there they are placed into the
model's folder (hard links where the cache is on the same disk, else copies), in a
`.partial` folder first: generation never sees half a model.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from easel.compose.pull_files import (
    MODEL_INDEX,
    PullError,
    choose_files,
    detect_family,
)
from easel.compose.weights import MARKER
from easel.generation.engines.diffusers.hub import HubReach
from easel.generation.engines.diffusers.models import BUILTIN_SOURCE
from easel.generation.pulled import configured_models, record_pulled
from easel.generation.settings import GenerationSettings, ModelSpec

Report = Callable[[str], None]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# A model name is a URL path segment (/api/models/{name}/load) and a folder name.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class PullPlan:
    name: str
    hub_id: str
    destination: Path
    variant: str | None
    family: str | None  # None: read from the repo's model_index.json
    base: ModelSpec | None  # the catalogue's entry, whose defaults the pulled one keeps


def plan_pull(
    target: str,
    generation: GenerationSettings,
    *,
    variant: str | None = None,
    family: str | None = None,
    name: str | None = None,
) -> PullPlan:
    """What pulling `target` (a catalogue name or a hub id) means: PullError if neither."""
    models_path = generation.models_path
    known = configured_models(generation)
    base = known.get(target)
    if base is not None:
        hub_id = _hub_id_of(target, base, models_path)
    elif _HUB_ID.match(target):
        hub_id = target
    else:
        known_names = ", ".join(sorted(n for n, s in known.items() if _HUB_ID.match(s.source)))
        raise PullError(
            f"unknown model {target!r}: pull a hub id (org/name) or one of {known_names}"
        )
    chosen = name or (target if base is not None else hub_id.split("/")[1].lower())
    if not _NAME.match(chosen):
        raise PullError(
            f"{chosen!r} cannot name a model (lower case letters, digits, '.', '_', '-'): "
            "pass --name"
        )
    destination = models_path / chosen
    if destination.exists() and not (destination / MARKER).is_file():
        # A folder someone put there: a pull replaces its folder, so never this one.
        raise PullError(f"{destination} exists and was not pulled: choose another --name")
    return PullPlan(
        name=chosen,
        hub_id=hub_id,
        destination=destination,
        variant=variant if variant is not None else (base.variant if base else None),
        family=family or (base.family if base else None),
        base=base,
    )


def _hub_id_of(name: str, spec: ModelSpec, models_path: Path) -> str:
    """Where a configured model comes from: its hub id, or the one a pull recorded."""
    if spec.source.startswith(BUILTIN_SOURCE):
        raise PullError(f"{name} is built locally from code: nothing to pull")
    marker = models_path / spec.source / MARKER
    if marker.is_file():  # pulled (or downloaded) before: from the same repo again
        with contextlib.suppress(OSError, ValueError, KeyError):
            return str(json.loads(marker.read_text())["source"])
    if not _HUB_ID.match(spec.source):
        raise PullError(f"{name}'s source {spec.source} is a folder, not a hub id")
    return spec.source


def pull(plan: PullPlan, generation: GenerationSettings, *, report: Report) -> ModelSpec:
    """Fetch and place the model, record its entry; its entry. PullError on failure."""
    hub = HubReach.from_hub_settings(
        timeout_s=generation.generation_hub_timeout, recheck_s=generation.generation_hub_recheck
    )
    # Unreachable: the cache only, at once (no retries), and a failure says why.
    cache_only = not hub.reachable()
    started = time.perf_counter()
    with _hub_errors(plan, hub, cache_only):
        files = _repo_files(plan.hub_id, cache_only)
        index = _model_index(plan.hub_id, cache_only)
        family = plan.family or detect_family(index, plan.hub_id)
        chosen = choose_files(files, index, plan.variant)
        report(f"pulling {plan.hub_id} ({len(chosen)} files) -> {plan.destination}")
        snapshot = _snapshot(plan.hub_id, chosen, cache_only)
    _place(Path(snapshot), chosen, plan)
    spec = _entry(plan, family)
    record_pulled(generation.models_path, plan.name, spec)
    report(
        f"pulled {plan.name} in {time.perf_counter() - started:.1f} s: "
        f"EASEL_GENERATION_MODEL={plan.name} now loads it"
    )
    return spec


def _entry(plan: PullPlan, family: str) -> ModelSpec:
    described = f"pulled from {plan.hub_id}" + (f" ({plan.variant})" if plan.variant else "")
    update = {"source": plan.name, "family": family, "variant": plan.variant}
    if plan.base is None:
        return ModelSpec.model_validate({**update, "description": described})
    return plan.base.model_copy(update=update)


def _repo_files(hub_id: str, cache_only: bool) -> list[str]:
    from huggingface_hub import HfApi, snapshot_download

    if not cache_only:
        return HfApi().list_repo_files(hub_id)
    # Offline, the listing is what the cache holds (asking only for model_index.json, so a
    # cache that a filtered pull filled is not taken for an incomplete one).
    folder = Path(snapshot_download(hub_id, allow_patterns=[MODEL_INDEX], local_files_only=True))
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]


def _model_index(hub_id: str, cache_only: bool) -> dict[str, object]:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(hub_id, MODEL_INDEX, local_files_only=cache_only)
    index = json.loads(Path(path).read_text())
    if not isinstance(index, dict):
        raise PullError(f"{hub_id}'s {MODEL_INDEX} is not a JSON object")
    return index


def _snapshot(hub_id: str, files: list[str], cache_only: bool) -> str:
    from huggingface_hub import snapshot_download

    # Exact names as the patterns: only these are fetched (and resumed, if cut off).
    return snapshot_download(hub_id, allow_patterns=files, local_files_only=cache_only)


def _place(snapshot: Path, files: list[str], plan: PullPlan) -> None:
    partial = plan.destination.with_name(plan.destination.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    for file in files:
        source = (snapshot / file).resolve()  # the cache's snapshot holds links to blobs
        if not source.is_file():
            raise PullError(
                f"the hub cache's copy of {plan.hub_id} lacks {file}: pull again with a network"
            )
        target = partial / file
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # no second copy of gigabytes on the same disk
        except OSError:
            shutil.copyfile(source, target)
    marker = {"source": plan.hub_id, "variant": plan.variant, "fetched_at": time.time()}
    (partial / MARKER).write_text(json.dumps(marker))
    if plan.destination.exists():
        shutil.rmtree(plan.destination)
    os.replace(partial, plan.destination)


@contextlib.contextmanager
def _hub_errors(plan: PullPlan, hub: HubReach, cache_only: bool) -> Iterator[None]:
    """The hub's many exceptions, each turned into one PullError line."""
    try:
        yield
    except PullError:
        raise
    except Exception as exc:  # the hub's errors are many; each becomes one line
        raise PullError(_hub_message(plan, hub, cache_only, exc)) from None


def _hub_message(plan: PullPlan, hub: HubReach, cache_only: bool, exc: Exception) -> str:
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    what = f"cannot pull {plan.name} ({plan.hub_id})"
    if cache_only and isinstance(exc, (LocalEntryNotFoundError, FileNotFoundError)):
        return (
            f"{what}: it is not in the hub cache and {hub.why_unreachable}: run "
            f"`easel models pull {plan.hub_id}` where there is a network (or copy its hub "
            "cache, HF_HOME, here)"
        )
    if isinstance(exc, GatedRepoError):
        return f"{what}: the repo is gated: accept its terms on the hub, then `hf auth login`"
    if isinstance(exc, RepositoryNotFoundError):
        return f"{what}: no such repo on the hub (or it is private: `hf auth login`)"
    reason = " ".join(str(exc).split())[:300]
    return f"{what}: {type(exc).__name__}: {reason}"
