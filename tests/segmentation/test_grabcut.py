"""The weight-free segmenter on generated scenes with known ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from easel.segmentation.segmenters.base import Prompt
from easel.segmentation.segmenters.grabcut import GrabCutSegmenter
from tests.segmentation.scenes import iou, make_scene

SEEDS = range(9)


@pytest.fixture(scope="module")
def segmenter() -> GrabCutSegmenter:
    return GrabCutSegmenter(working_size=512, coarse_size=160)


def point(x: float, y: float) -> np.ndarray:
    return np.array([[x, y]], float)


@pytest.mark.parametrize("size", [384, 1024])
def test_single_interior_click_on_the_median_scene(segmenter: GrabCutSegmenter, size: int) -> None:
    scores = []
    for seed in SEEDS:
        scene = make_scene(seed, size)
        prepared = segmenter.prepare(scene.image)
        [candidate] = segmenter.segment(prepared, Prompt(positive=point(*scene.click)), 1)
        assert candidate.mask.shape == (size, size) and candidate.mask.dtype == np.uint8
        assert set(np.unique(candidate.mask)) <= {0, 255}
        assert 0 <= candidate.score <= 1
        scores.append(iou(candidate.mask, scene.truth))
    assert np.median(scores) >= 0.9, scores


def test_non_square_image_keeps_its_size(segmenter: GrabCutSegmenter) -> None:
    scene = make_scene(4, 512)
    wide = Image.fromarray(np.hstack([np.asarray(scene.image)] * 2))
    prepared = segmenter.prepare(wide)
    [candidate] = segmenter.segment(prepared, Prompt(positive=point(*scene.click)), 1)
    assert candidate.mask.shape == (512, 1024)
    truth = np.hstack([scene.truth, np.zeros_like(scene.truth)])
    assert iou(candidate.mask, truth) >= 0.9


def test_negative_point_removes_a_region(segmenter: GrabCutSegmenter) -> None:
    # Two same-coloured discs joined by a bar: one click takes both, a negative click on
    # the second disc leaves it out.
    rng = np.random.default_rng(3)
    pixels = np.full((256, 256, 3), (40, 60, 160), np.float64)
    y, x = np.mgrid[0:256, 0:256]
    left = (x - 70) ** 2 + (y - 128) ** 2 <= 40**2
    right = (x - 186) ** 2 + (y - 128) ** 2 <= 40**2
    bar = (abs(y - 128) <= 6) & (x > 70) & (x < 186)
    pixels[left | right | bar] = (220, 180, 40)
    noisy = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255)
    image = Image.fromarray(noisy.astype(np.uint8))
    prepared = segmenter.prepare(image)
    [both] = segmenter.segment(prepared, Prompt(positive=point(70, 128)), 1)
    assert iou(both.mask, left | right | bar) >= 0.9
    [one] = segmenter.segment(
        prepared, Prompt(positive=point(70, 128), negative=point(186, 128)), 1
    )
    selected = one.mask > 127
    assert selected[left].mean() > 0.9
    assert selected[right].mean() < 0.1


def test_box_alone(segmenter: GrabCutSegmenter) -> None:
    scores = []
    for seed in SEEDS:
        scene = make_scene(seed, 384)
        prepared = segmenter.prepare(scene.image)
        x1, y1, x2, y2 = scene.box()
        [candidate] = segmenter.segment(prepared, Prompt(box=(x1, y1, x2, y2)), 1)
        scores.append(iou(candidate.mask, scene.truth))
    assert np.median(scores) >= 0.9, scores


def test_multimask_gives_distinct_candidates_best_first(segmenter: GrabCutSegmenter) -> None:
    scene = make_scene(1, 384)
    prepared = segmenter.prepare(scene.image)
    candidates = segmenter.segment(prepared, Prompt(positive=point(*scene.click)), 4)
    assert 1 <= len(candidates) <= 4
    [single] = segmenter.segment(prepared, Prompt(positive=point(*scene.click)), 1)
    assert np.array_equal(candidates[0].mask, single.mask)
    for a in range(len(candidates)):
        for b in range(a + 1, len(candidates)):
            assert iou(candidates[a].mask, candidates[b].mask > 127) < 0.92


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (2, 40)])
def test_tiny_images_do_not_break_it(segmenter: GrabCutSegmenter, size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, (10, 200, 30))
    prepared = segmenter.prepare(image)
    [candidate] = segmenter.segment(prepared, Prompt(positive=point(0, 0)), 3)
    assert candidate.mask.shape == (size[1], size[0])
