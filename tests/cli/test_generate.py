"""`easel generate` (the stream, and --async as a job) and `easel mask`, in both
topologies: the images written, the progress bar's last state in the output."""

from __future__ import annotations

from PIL import Image

from tests.cli.conftest import Easel
from tests.segmentation.scenes import make_scene


def test_generate_streams_with_a_bar_and_writes_each_image(easel: Easel) -> None:
    made = easel.run(
        "generate", "a quiet lake", "--steps", "3", "--seed", "7", "--size", "64x64",
        "-n", "2", "--guidance", "2.5", "--negative", "blurry", "-o", "lake.png",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    # Not a terminal: rich draws the bar once, as it ends, with its last step of total.
    assert "generating" in made.stderr and "3/3" in made.stderr
    assert made.stdout.splitlines()[:2] == ["lake.png", "lake-1.png"]
    assert "2 images 64x64, seed 7, 3 steps" in made.stdout
    for name in ("lake.png", "lake-1.png"):
        with Image.open(easel.cwd / name) as image:
            assert image.format == "PNG" and image.size == (64, 64)


def test_generate_async_waits_for_the_job_with_a_bar(easel: Easel) -> None:
    made = easel.run("generate", "a fox", "--steps", "2", "--seed", "3", "--async", "-o", "fox.jpg")
    assert made.exit_code == 0, made.output
    assert "queued" in made.stderr and "easel jobs wait" in made.stderr
    assert "2/2" in made.stderr
    with Image.open(easel.cwd / "fox.jpg") as image:
        assert image.format == "JPEG"  # the format -o's suffix implies


def test_mask_then_inpaint_with_it(easel: Easel) -> None:
    scene = make_scene(7, 128)
    scene.image.save(easel.cwd / "scene.png")
    x, y = scene.click
    masked = easel.run(
        "mask", "scene.png", "--point", f"{x},{y}", "--negative", "1,1", "-o", "mask.png"
    )
    assert masked.exit_code == 0, masked.output
    assert masked.stdout.startswith("mask.png\n")
    assert (
        "bbox [" in masked.stdout and "area " in masked.stdout and "model grabcut" in masked.stdout
    )
    with Image.open(easel.cwd / "mask.png") as mask:
        assert mask.mode == "L" and mask.size == (128, 128)
    boxed = easel.run("mask", "scene.png", "--box", "0,0,127,127", "-o", "boxed.png")
    assert boxed.exit_code == 0, boxed.output
    painted = easel.run(
        "generate", "a red door", "--image", "scene.png", "--mask", "mask.png",
        "--steps", "2", "--style", "digital-art", "--format", "webp", "-o", "door.webp",
    )  # fmt: skip
    assert painted.exit_code == 0, painted.output
    with Image.open(easel.cwd / "door.webp") as image:
        assert image.format == "WEBP" and image.size == (128, 128)
