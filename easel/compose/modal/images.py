"""What each Modal image installs, read from `pyproject.toml`: one list of dependencies,
so the images cannot drift from what `pip install easel[...]` installs.

The CPU services' images get easel's own dependencies alone (no torch); the GPU ones add
their extra, with torch pinned to the CUDA build `make` uses.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

# Where easel's source is copied in every image (and installed from).
SOURCE_MOUNT = "/opt/easel"

# The extras of each image, by service key (`download` is the weights function's).
EXTRAS: dict[str, tuple[str, ...]] = {
    "gateway": (),
    "job_manager": (),
    "image_utils": (),
    "generation": ("generation",),
    "segmentation": ("segmentation",),
    "download": ("weights",),
}
GPU_IMAGES = frozenset({"generation", "segmentation"})
# Debian libraries OpenCV and ultralytics load at import.
APT_PACKAGES = ("libgl1", "libglib2.0-0")
# Paths of the repository not copied into an image.
IGNORED = (
    ".git",
    ".venv",
    "**/__pycache__",
    "**/*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "data",
    "run",
    "models",
    "tests",
    "benchmarks",
)


def source_root(module_file: str | Path) -> Path:
    """The repository holding `pyproject.toml`: beside the deploy folder where `modal
    deploy` runs, the copied source inside a container (which imports the app again)."""
    for candidate in (Path(module_file).resolve().parent.parent, Path(SOURCE_MOUNT)):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise FileNotFoundError("pyproject.toml: neither beside deploy/ nor in " + SOURCE_MOUNT)


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return (match.group(0) if match else requirement).lower().replace("_", "-")


@dataclass(frozen=True)
class ImagePlan:
    """One image: Debian packages, then Python requirements, then easel from source."""

    service: str
    apt: tuple[str, ...]
    requirements: tuple[str, ...]  # all of them: easel's own dependencies, then the extras'
    base_count: int  # how many of `requirements` are easel's own (the shared base layer)
    # Reinstalled without dependencies after the rest (ultralytics pulls desktop OpenCV
    # into the same cv2 folder as the headless build; see the Makefile).
    reinstall: tuple[str, ...] = ()

    @property
    def base(self) -> tuple[str, ...]:
        return self.requirements[: self.base_count]

    @property
    def extras(self) -> tuple[str, ...]:
        return self.requirements[self.base_count :]

    @property
    def has_torch(self) -> bool:
        return any(_name(r) == "torch" for r in self.requirements)


def image_plan(service: str, pyproject: Path, torch: list[str]) -> ImagePlan:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    base_count = len(requirements)
    for extra in EXTRAS[service]:
        requirements += project["optional-dependencies"][extra]
    reinstall: tuple[str, ...] = ()
    if service in GPU_IMAGES:
        # The extras' ranges (torch>=2.4) become the pinned CUDA builds.
        pinned = {_name(pin): pin for pin in torch}
        requirements = [pinned.get(_name(r), r) for r in requirements]
        if service == "segmentation":
            reinstall = tuple(r for r in requirements if _name(r) == "opencv-python-headless")
    return ImagePlan(
        service=service,
        apt=APT_PACKAGES,
        requirements=tuple(requirements),
        base_count=base_count,
        reinstall=reinstall,
    )
