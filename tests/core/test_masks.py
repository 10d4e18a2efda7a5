"""Mask refinement: disk, fill_holes, refine_mask, against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from pydantic import ValidationError

from easel.core.masks import MAX_RADIUS, MaskRefine, disk, fill_holes, refine_mask
from tests.support.images import (
    dilate_reference,
    disk_mask,
    disk_offsets,
    erode_reference,
    ring_mask,
)


def random_blobs(height: int, width: int, seed: int, density: float = 0.03) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return ((rng.random((height, width)) < density) * 255).astype(np.uint8)


def square(size: int, x0: int, y0: int, x1: int, y1: int) -> NDArray[np.uint8]:
    mask = np.zeros((size, size), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


# ---- disk -------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4, 7, 10])
def test_disk_is_every_offset_within_the_radius(radius: int) -> None:
    element = disk(radius)
    assert element.dtype == np.uint8
    assert element.shape == (2 * radius + 1, 2 * radius + 1)
    expected = np.zeros_like(element)
    for dy, dx in disk_offsets(radius):
        expected[dy + radius, dx + radius] = 1
    assert np.array_equal(element, expected)


def test_disk_small_radii_by_hand() -> None:
    assert disk(0).tolist() == [[1]]
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]


# ---- fill_holes -------------------------------------------------------------------------


def test_fill_holes_fills_an_enclosed_hole() -> None:
    ring = ring_mask(41, 15, 8)
    filled = fill_holes(ring)
    assert np.array_equal(filled, disk_mask(41, 41, 20, 20, 15))


def test_fill_holes_leaves_an_open_notch() -> None:
    ring = ring_mask(41, 15, 8)
    notched = ring.copy()
    notched[18:23, 20:] = 0  # cut the ring open to the right: the hole now reaches outside
    assert np.array_equal(fill_holes(notched), notched)


def test_fill_holes_leaves_background_touching_the_border() -> None:
    # A U shape whose opening is the image's top edge: its inside is not a hole.
    mask = np.zeros((20, 20), np.uint8)
    mask[0:15, 3:6] = 255
    mask[0:15, 14:17] = 255
    mask[12:15, 3:17] = 255
    assert np.array_equal(fill_holes(mask), mask)


def test_fill_holes_sealed_by_the_image_border_is_not_a_hole() -> None:
    # A selection along the left edge with a gap against the border: the gap touches the
    # border, so it is background outside the selection.
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 0:5] = 255
    mask[4:6, 0:3] = 0
    assert np.array_equal(fill_holes(mask), mask)


def test_fill_holes_fills_several_and_nested_holes() -> None:
    mask = np.maximum(ring_mask(61, 28, 22), ring_mask(61, 14, 8))
    filled = fill_holes(mask)
    assert np.array_equal(filled, disk_mask(61, 61, 30, 30, 28))
    small = square(30, 2, 2, 12, 12)
    small[5:8, 5:8] = 0
    other = square(30, 15, 15, 28, 28)
    other[20, 20] = 0
    assert np.array_equal(
        fill_holes(np.maximum(small, other)),
        np.maximum(square(30, 2, 2, 12, 12), square(30, 15, 15, 28, 28)),
    )


def test_fill_holes_diagonal_outline_encloses() -> None:
    # A one-pixel diamond outline is 8-connected: its inside counts as enclosed.
    mask = np.zeros((21, 21), np.uint8)
    for i in range(8):
        for y, x in ((2 + i, 10 + i), (2 + i, 10 - i), (18 - i, 10 + i), (18 - i, 10 - i)):
            mask[y, x] = 255
    mask[10, 2] = mask[10, 18] = 255
    filled = fill_holes(mask)
    assert filled[10, 10] == 255
    yy, xx = np.mgrid[0:21, 0:21]
    inside = np.abs(yy - 10) + np.abs(xx - 10) <= 8
    assert (filled[inside] == 255).all()
    assert (filled[~inside] == mask[~inside]).all()


def test_fill_holes_keeps_grey_values_and_the_input() -> None:
    ring = (ring_mask(31, 12, 6) // 255 * 180).astype(np.uint8)
    before = ring.copy()
    filled = fill_holes(ring)
    assert np.array_equal(ring, before)  # the input is not modified
    assert filled[15, 15] == 255  # holes become fully selected
    assert (filled[ring == 180] == 180).all()  # existing values are kept
    assert filled[0, 0] == 0


def test_fill_holes_of_empty_and_full_masks() -> None:
    assert not fill_holes(np.zeros((5, 7), np.uint8)).any()
    assert (fill_holes(np.full((5, 7), 255, np.uint8)) == 255).all()


# ---- refine_mask: each step against a reference -------------------------------------------


def test_identity_refine_changes_nothing() -> None:
    mask = random_blobs(20, 30, seed=1, density=0.5)
    mask[3, 3] = 77
    assert MaskRefine().is_identity
    assert not MaskRefine(dilate=1).is_identity
    out = refine_mask(mask, MaskRefine())
    assert np.array_equal(out, mask)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("threshold", [0, 1, 100, 128, 255])
def test_threshold(threshold: int) -> None:
    gradient = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    out = refine_mask(gradient, MaskRefine(threshold=threshold))
    expected = np.where(np.arange(256) >= threshold, 255, 0).astype(np.uint8)
    assert np.array_equal(out, np.tile(expected, (3, 1)))


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
def test_dilate_matches_reference(radius: int) -> None:
    mask = random_blobs(40, 50, seed=radius)
    mask[0, 0] = mask[39, 49] = 255  # include the corners: nothing comes from outside
    out = refine_mask(mask, MaskRefine(dilate=radius))
    assert np.array_equal(out, dilate_reference(mask, radius))


def test_dilate_of_a_disk_is_a_bigger_disk() -> None:
    out = refine_mask(disk_mask(61, 61, 30, 30, 10), MaskRefine(dilate=5))
    assert np.array_equal(out, dilate_reference(disk_mask(61, 61, 30, 30, 10), 5))
    assert out[30, 30 + 15] == 255 and out[30, 30 + 16] == 0
    assert out[30 + 15, 30] == 255 and out[30 + 16, 30] == 0


def test_dilate_of_grey_mask_is_a_max_filter() -> None:
    rng = np.random.default_rng(4)
    grey = rng.integers(0, 256, (25, 35), dtype=np.uint8)
    out = refine_mask(grey, MaskRefine(dilate=2))
    assert np.array_equal(out, dilate_reference(grey, 2))


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_erode_matches_reference(radius: int) -> None:
    mask = 255 - random_blobs(40, 50, seed=10 + radius, density=0.04)
    out = refine_mask(mask, MaskRefine(erode=radius))
    assert np.array_equal(out, erode_reference(mask, radius))


def test_erode_of_a_disk_is_a_smaller_disk() -> None:
    out = refine_mask(disk_mask(61, 61, 30, 30, 12), MaskRefine(erode=4))
    assert np.array_equal(out, erode_reference(disk_mask(61, 61, 30, 30, 12), 4))
    assert out[30, 30 + 8] == 255 and out[30, 30 + 9] == 0


def test_erode_does_not_eat_a_selection_from_the_image_edge() -> None:
    # The selection continues beyond the frame, as far as we know: the edge is not a boundary.
    full = np.full((12, 12), 255, np.uint8)
    assert (refine_mask(full, MaskRefine(erode=3)) == 255).all()
    bottom = np.zeros((12, 12), np.uint8)
    bottom[6:] = 255
    out = refine_mask(bottom, MaskRefine(erode=2))
    assert (out[8:] == 255).all() and not out[:8].any()


def test_dilate_runs_before_erode_closing_a_gap() -> None:
    # Two squares 2 px apart: dilate 2 then erode 2 (a closing) bridges them.
    mask = np.zeros((30, 40), np.uint8)
    mask[10:20, 5:18] = 255
    mask[10:20, 20:33] = 255
    out = refine_mask(mask, MaskRefine(dilate=2, erode=2))
    assert np.array_equal(out, erode_reference(dilate_reference(mask, 2), 2))
    assert (out[12:18, 18:20] == 255).all()  # the gap is closed
    # the other order (an opening) would leave the gap open: proves the order used
    opening = dilate_reference(erode_reference(mask, 2), 2)
    assert not opening[12:18, 18:20].any()


def test_threshold_runs_before_dilate() -> None:
    mask = np.zeros((21, 21), np.uint8)
    mask[10, 10] = 100  # below the threshold: removed before it could grow
    mask[3, 3] = 200
    out = refine_mask(mask, MaskRefine(threshold=150, dilate=1))
    binary = np.where(mask >= 150, 255, 0).astype(np.uint8)
    assert np.array_equal(out, dilate_reference(binary, 1))
    assert out[10, 10] == 0 and out[3, 4] == 255


def test_fill_holes_runs_before_erode() -> None:
    ring = ring_mask(41, 15, 4)
    out = refine_mask(ring, MaskRefine(fill_holes=True, erode=3))
    # filled then eroded: a solid disk of radius ~12; the old hole is selected
    assert out[20, 20] == 255
    assert np.array_equal(out, erode_reference(disk_mask(41, 41, 20, 20, 15), 3))


def test_feather_softens_only_the_edge() -> None:
    mask = square(60, 20, 20, 40, 40)
    out = refine_mask(mask, MaskRefine(feather=2.0))
    edge = out[30, 17:24]
    assert ((edge > 0) & (edge < 255)).any(), edge
    assert ((out > 0) & (out < 255)).sum() > 4 * 20
    assert out[30, 30] >= 250  # deep inside stays selected
    assert out[2, 2] == 0  # far outside stays empty
    assert abs(int(out[30, 19]) + int(out[30, 20]) - 255) <= 10  # symmetric around the edge
    assert abs(float(out.sum()) - float(mask.sum())) / mask.sum() < 0.01  # a blur keeps mass


def test_feather_strength_grows_with_sigma() -> None:
    mask = square(60, 20, 20, 40, 40)

    def soft(sigma: float) -> int:
        out = refine_mask(mask, MaskRefine(feather=sigma))
        return int(((out > 0) & (out < 255)).sum())

    assert soft(0.5) < soft(2.0) < soft(5.0)


def test_invert_is_last() -> None:
    mask = square(40, 10, 10, 30, 30)
    assert np.array_equal(refine_mask(mask, MaskRefine(invert=True)), 255 - mask)
    feathered = refine_mask(mask, MaskRefine(feather=1.5))
    both = refine_mask(mask, MaskRefine(feather=1.5, invert=True))
    assert np.array_equal(both, 255 - feathered)
    thresholded = refine_mask(np.full((3, 3), 90, np.uint8), MaskRefine(threshold=50, invert=True))
    assert not thresholded.any()  # 90 >= 50 -> 255, then inverted -> 0


def test_full_pipeline_against_reference() -> None:
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (50, 50), dtype=np.uint8)
    refine = MaskRefine(threshold=200, dilate=2, erode=1, invert=True)
    step = np.where(grey >= 200, 255, 0).astype(np.uint8)
    step = erode_reference(dilate_reference(step, 2), 1)
    assert np.array_equal(refine_mask(grey, refine), 255 - step)


def test_refine_mask_output_is_contiguous_uint8_and_input_is_kept() -> None:
    mask = random_blobs(16, 16, seed=3)
    before = mask.copy()
    out = refine_mask(mask[:, ::-1], MaskRefine(dilate=1, feather=1.0, invert=True))
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]
    assert out.shape == (16, 16)
    assert np.array_equal(mask, before)


# ---- MaskRefine validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"threshold": -1},
        {"threshold": 256},
        {"dilate": -1},
        {"erode": MAX_RADIUS + 1},
        {"feather": -0.5},
        {"dilate": 1.5},
        {"invert": "perhaps"},
        {"unknown": 1},
    ],
)
def test_mask_refine_rejects_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        MaskRefine.model_validate(fields)
    assert info.value.errors()[0]["loc"] == (next(iter(fields)),)


def test_mask_refine_accepts_form_strings() -> None:
    refine = MaskRefine.model_validate(
        {"threshold": "10", "dilate": "3", "feather": "1.5", "invert": "true", "fill_holes": "1"}
    )
    assert refine == MaskRefine(threshold=10, dilate=3, feather=1.5, invert=True, fill_holes=True)
