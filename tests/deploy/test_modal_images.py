"""What the Modal images install, read back from their build commands, against
`pyproject.toml` and the Makefile: no drift between the lists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.modal_parts import image_commands, import_app, pip_installed

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What Modal's own Python base image installs before ours.
MODAL_BASE = {"pip", "wheel", "uv", "setuptools"}
TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "ultralytics", "diffusers", "transformers"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def _ours(image: object) -> list[str]:
    return [r for r in pip_installed(image) if _name(r) not in MODAL_BASE]


def _makefile_torch() -> list[str]:
    line = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("TORCH ?=")
    )
    return line.split("?=", 1)[1].split()


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    return import_app()


@pytest.mark.parametrize("image", ["cpu_image", "generation_image", "segmentation_image"])
def test_every_image_installs_exactly_easels_dependencies_and_its_extras(
    app_module: ModuleType, image: str
) -> None:
    extras = {
        "cpu_image": [],
        "generation_image": ["generation"],
        "segmentation_image": ["segmentation"],
    }
    expected = list(PROJECT["dependencies"])
    for extra in extras[image]:
        expected += PROJECT["optional-dependencies"][extra]
    installed = _ours(getattr(app_module, image))
    pins = {_name(pin): pin for pin in _makefile_torch()}
    # torch and torchvision as `make` pins them, every other requirement as written.
    assert sorted(installed) == sorted(pins.get(_name(r), r) for r in expected)


def test_the_cpu_services_image_has_no_torch(app_module: ModuleType) -> None:
    names = {_name(r) for r in _ours(app_module.cpu_image)}
    assert not names & TORCH_FAMILY
    assert {_name(r) for r in _ours(app_module.download_image)} & TORCH_FAMILY == set()
    assert "huggingface-hub" in {_name(r) for r in _ours(app_module.download_image)}


def test_the_gpu_images_install_the_cuda_torch_that_make_pins(app_module: ModuleType) -> None:
    for image in (app_module.generation_image, app_module.segmentation_image):
        installed = _ours(image)
        assert "torch==" + _makefile_torch()[0].split("==")[1] in installed
    segmentation = _ours(app_module.segmentation_image)
    assert [pin for pin in segmentation if _name(pin) == "torchvision"] == [_makefile_torch()[1]]


def test_easel_is_installed_from_this_repositorys_source_last(app_module: ModuleType) -> None:
    for image in ("cpu_image", "generation_image", "segmentation_image", "download_image"):
        commands = image_commands(getattr(app_module, image))
        assert commands[-1] == "RUN pip install --no-deps /opt/easel", image
        assert "COPY . /" in commands[-3:], image


def test_segmentation_keeps_one_headless_opencv(app_module: ModuleType) -> None:
    # ultralytics pulls the desktop opencv-python: reinstalled headless after it, as `make`.
    commands = image_commands(app_module.segmentation_image)
    reinstall = [c for c in commands if "--force-reinstall" in c]
    assert len(reinstall) == 1 and "opencv-python-headless" in reinstall[0]
    assert commands.index(reinstall[0]) > max(
        i for i, c in enumerate(commands) if "ultralytics" in c and "--force" not in c
    )
