"""`easel models pull` against a hub cache made here: a tiny SD pipeline in huggingface_hub's
cache layout, with decoys (.bin, an fp16 variant, ONNX, Flax, a single-file checkpoint).
With HF_HUB_OFFLINE=1 huggingface_hub serves it from that cache, as on a machine that
fetched it before; only the files the pipeline needs land in MODELS_PATH/<name>, and a
server then runs it by name with an empty hub cache of its own. `easel models list
--local`, and `easel models`, `load`, `unload` against that server.

The commands run as real processes, so what stderr says is exactly what a user reads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from easel.generation.tiny import sd_pipeline
from tests.generation.helpers import WAIT, image_of
from tests.support.servers import ServerProcess, base_env, start_server

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

HUB_ID = "someorg/Tiny-SD"
NAME = "tiny-sd"  # the repo's name in lower case
REVISION = "0123456789abcdef0123456789abcdef01234567"
DECOYS = (
    "unet/diffusion_pytorch_model.bin",
    "text_encoder/flax_model.msgpack",
    "onnx/unet/model.onnx",
    "onnx/unet/config.json",
    "v1-5-pruned.ckpt",
    "single-file.safetensors",
    "README.md",
)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A hub cache holding HUB_ID at REVISION, and the files the pipeline needs."""
    cache = tmp_path_factory.mktemp("hub") / "hf-cache"
    repo = cache / "models--someorg--Tiny-SD"
    snapshot = repo / "snapshots" / REVISION
    pipeline = sd_pipeline()
    pipeline.save_pretrained(snapshot)
    needed = _files(snapshot)
    pipeline.unet.save_pretrained(snapshot / "unet", variant="fp16")  # none for the others
    for decoy in DECOYS:
        (snapshot / decoy).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / decoy).write_bytes(b"decoy")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return cache, needed


def easel(tmp: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "easel", *args],
        env={**base_env(tmp, env), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def pulled(
    hub: tuple[Path, set[str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """HUB_ID pulled into a fresh MODELS_PATH; the folder and the commands' environment."""
    tmp = tmp_path_factory.mktemp("pulled")
    env = {"MODELS_PATH": str(tmp / "models"), "HF_HUB_CACHE": str(hub[0])}
    done = easel(tmp, "models", "pull", HUB_ID, env=env)
    assert done.returncode == 0, done.stderr
    assert f"EASEL_GENERATION_MODEL={NAME}" in done.stdout
    return tmp / "models", env


@pytest.fixture(scope="module")
def server(pulled: tuple[Path, dict[str, str]], tmp_path_factory) -> Iterator[ServerProcess]:
    models, _ = pulled
    env = {"MODELS_PATH": str(models), "EASEL_GENERATION_MODEL": NAME}
    # base_env gives the server an empty hub cache: the model can only come from MODELS_PATH.
    running = start_server("all", tmp_path_factory.mktemp("server"), env)
    yield running
    running.stop()


def test_only_the_pipeline_files_land_and_its_entry_is_written(
    hub: tuple[Path, set[str]], pulled: tuple[Path, dict[str, str]]
) -> None:
    models, _ = pulled
    placed = _files(models / NAME) - {".easel-weights.json"}
    assert placed == hub[1]
    assert not any(f.endswith((".bin", ".ckpt", ".onnx", ".msgpack")) for f in placed)
    entries = json.loads((models / "easel-models.json").read_text())
    assert entries[NAME]["source"] == NAME and entries[NAME]["family"] == "sd"
    assert HUB_ID in entries[NAME]["description"]


def test_the_pulled_model_generates_offline_by_name(server: ServerProcess) -> None:
    body = {"prompt": "a fox", "steps": 2, "width": 64, "height": 64, "seed": 1}
    answer = httpx.post(f"{server.url}/api/generate", json=body, timeout=WAIT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == NAME
    assert image_of(answer.json()).size == (64, 64)


def test_models_lists_load_and_unload_on_the_server(server: ServerProcess, tmp_path: Path) -> None:
    env: dict[str, str] = {}
    url = ("--url", server.url)
    listed = easel(tmp_path, "models", *url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert NAME in listed.stdout and "tiny-random" in listed.stdout
    same = easel(tmp_path, "models", "list", *url, env=env)
    assert same.returncode == 0 and NAME in same.stdout
    loaded = easel(tmp_path, "models", "load", NAME, *url, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith(f"{NAME}: ")
    assert _state(server, NAME)["loaded"] is True
    unloaded = easel(tmp_path, "models", "unload", NAME, *url, env=env)
    assert unloaded.returncode == 0, unloaded.stderr
    assert _state(server, NAME)["loaded"] is False
    unknown = easel(tmp_path, "models", "load", "no-such-model", *url, env=env)
    assert unknown.returncode == 1 and unknown.stderr.startswith("easel: 404: ")


def _state(server: ServerProcess, name: str) -> dict[str, object]:
    listing = httpx.get(f"{server.url}/api/models", timeout=WAIT).json()
    return next(model for model in listing["models"] if model["name"] == name)


def test_list_local_shows_the_pulled_model_and_where_its_weights_are(
    pulled: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    models, env = pulled
    listed = easel(tmp_path, "models", "list", "--local", env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if f" {NAME} " in line)
    assert "pulled" in row and str(models / NAME) in row
    turbo = next(line for line in listed.stdout.splitlines() if " sd-turbo " in line)
    assert "missing" in turbo
    tiny = next(line for line in listed.stdout.splitlines() if " tiny-random " in line)
    assert "built from code" in tiny


def test_a_variant_takes_its_files_and_the_plain_ones_where_it_has_none(
    hub: tuple[Path, set[str]], tmp_path: Path
) -> None:
    env = {"MODELS_PATH": str(tmp_path / "models"), "HF_HUB_CACHE": str(hub[0])}
    done = easel(tmp_path, "models", "pull", HUB_ID, "--variant", "fp16", "--name", "x16", env=env)
    assert done.returncode == 0, done.stderr
    placed = _files(tmp_path / "models" / "x16")
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in placed
    assert "unet/diffusion_pytorch_model.safetensors" not in placed
    assert "vae/diffusion_pytorch_model.safetensors" in placed  # no fp16 vae: the plain one
    entries = json.loads((tmp_path / "models" / "easel-models.json").read_text())
    assert entries["x16"]["variant"] == "fp16"

    from diffusers import StableDiffusionPipeline

    # As the engine loads it (loading.py passes the entry's variant).
    loaded = StableDiffusionPipeline.from_pretrained(tmp_path / "models" / "x16", variant="fp16")
    assert type(loaded.unet).__name__ == "UNet2DConditionModel"


@pytest.mark.parametrize("target", ["someorg/not-cached", "sd-turbo"])
def test_offline_and_not_cached_fails_in_one_line(
    hub: tuple[Path, set[str]], tmp_path: Path, target: str
) -> None:
    env = {"MODELS_PATH": str(tmp_path / "models"), "HF_HUB_CACHE": str(hub[0])}
    done = easel(tmp_path, "models", "pull", target, env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("easel models pull: cannot pull ")
    assert "not in the hub cache and HF_HUB_OFFLINE is set" in line
    assert "where there is a network" in line
    assert not (tmp_path / "models").exists()


def test_what_cannot_be_pulled_says_why(hub: tuple[Path, set[str]], tmp_path: Path) -> None:
    env = {"MODELS_PATH": str(tmp_path / "models"), "HF_HUB_CACHE": str(hub[0])}
    builtin = easel(tmp_path, "models", "pull", "tiny-random", env=env)
    assert builtin.returncode == 1
    assert (
        builtin.stderr
        == "easel models pull: tiny-random is built locally from code: nothing to pull\n"
    )
    unknown = easel(tmp_path, "models", "pull", "no-such-model", env=env)
    assert unknown.returncode == 1 and "hub id (org/name)" in unknown.stderr
    (tmp_path / "models" / "mine").mkdir(parents=True)
    own = easel(tmp_path, "models", "pull", HUB_ID, "--name", "mine", env=env)
    assert own.returncode == 1 and "exists and was not pulled" in own.stderr
    family = easel(tmp_path, "models", "pull", HUB_ID, "--family", "nope", env=env)
    assert family.returncode == 2 and "qwen-image-edit" in family.stderr
