"""`easel utils ...` (every image-utils op), `easel workflows` and `easel models`."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.cli.conftest import Easel
from tests.support.images import disk_mask, scene


def _open(easel: Easel, name: str) -> Image.Image:
    image = Image.open(easel.cwd / name)
    image.load()
    return image


def test_every_image_op(easel: Easel) -> None:
    scene(96, 64).save(easel.cwd / "in.png")
    Image.fromarray(disk_mask(96, 64, 48, 32, 20), "L").save(easel.cwd / "disk.png")

    def ok(*args: str) -> str:
        result = easel.run("utils", *args)
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("resize", "in.png", "--width", "32", "--height", "32", "--fit", "stretch", "-o", "r.png")
    assert _open(easel, "r.png").size == (32, 32)
    ok("resize", "in.png", "--scale", "0.5", "-o", "half.png")
    assert _open(easel, "half.png").size == (48, 32)
    ok("crop", "in.png", "--x", "8", "--y", "4", "--width", "20", "--height", "10", "-o", "c.png")
    assert _open(easel, "c.png").size == (20, 10)
    ok("convert", "in.png", "-o", "in.webp", "--quality", "80")
    assert _open(easel, "in.webp").format == "WEBP"
    ok("extract-object", "in.png", "disk.png", "--crop", "--padding", "2", "-o", "obj.png")
    cut = _open(easel, "obj.png")
    assert cut.mode == "RGBA" and 40 < cut.width < 50 and 40 < cut.height < 50  # the disk
    ok("canny", "in.png", "--low", "50", "--high", "150", "--aperture", "5", "-o", "e.png")
    assert _open(easel, "e.png").size == (96, 64)
    ok("mask", "disk.png", "--dilate", "2", "--feather", "1", "--invert", "-o", "m.png")
    refined = np.asarray(_open(easel, "m.png").convert("L"))
    assert refined[32, 48] == 0 and refined[0, 0] == 255  # inverted
    assert ok("diff", "in.png", "in.png").startswith("mae 0.0000")
    printed = ok("diff", "in.png", "e.png", "-o", "heat.png")
    assert printed.startswith("mae ") and not printed.startswith("mae 0.0000")
    assert _open(easel, "heat.png").size == (96, 64)


def test_a_refused_op_is_exit_1_naming_the_field(easel: Easel) -> None:
    scene(96, 64).save(easel.cwd / "in.png")
    scene(32, 32).save(easel.cwd / "small.png")
    refused = easel.run("utils", "diff", "in.png", "small.png")
    assert refused.exit_code == 1 and refused.stderr.startswith("easel: 422: ")


def test_workflows_and_models(easel: Easel) -> None:
    flows = easel.run("workflows")
    assert flows.exit_code == 0 and "engine diffusers: no workflows" in flows.stdout
    models = easel.run("models")
    assert models.exit_code == 0, models.output
    assert "default tiny-random" in models.stdout and "sd-turbo" in models.stdout
