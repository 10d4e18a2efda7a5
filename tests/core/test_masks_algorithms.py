"""Mask refinement whose cost does not grow with the radius (issue 16, item 6): the same
results as the disk structuring element and the direct Gaussian blur of before, and radii
bounded by the mask's size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from easel.core.errors import InvalidInput
from easel.core.masks import MaskLimits, MaskRefine, disk, refine_mask
from tests.support.images import dilate_by_chords


def blobs(height: int, width: int, seed: int, density: float) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return ((rng.random((height, width)) < density) * 255).astype(np.uint8)


def shapes(height: int, width: int, seed: int) -> NDArray[np.uint8]:
    """Discs and boxes, some touching the border: a mask like a segmenter's."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(5):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(mask, centre, int(rng.integers(2, max(3, min(height, width) // 3))), 255, -1)
    cv2.rectangle(mask, (0, 0), (width // 5, height // 6), 255, -1)
    return mask


def old_dilate(mask: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    """The implementation before issue 16: the disk itself as the structuring element."""
    out: NDArray[np.uint8] = cv2.dilate(
        mask, disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    return out


def old_erode(mask: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = cv2.erode(
        mask, disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=255
    )
    return out


def old_feather(mask: NDArray[np.uint8], sigma: float) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = cv2.GaussianBlur(
        mask, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE
    )
    return out


# ---- the same results as before ----------------------------------------------------------


@pytest.mark.parametrize("radius", [1, 2, 3, 4, 5, 6, 9, 13, 20, 31, 40])
@pytest.mark.parametrize("density", [0.002, 0.03, 0.3])
def test_binary_dilate_and_erode_equal_the_disk_element(radius: int, density: float) -> None:
    mask = blobs(70, 90, seed=radius, density=density)
    mask[0, 0] = mask[69, 89] = 255
    assert np.array_equal(refine_mask(mask, MaskRefine(dilate=radius)), old_dilate(mask, radius))
    solid = 255 - mask
    assert np.array_equal(refine_mask(solid, MaskRefine(erode=radius)), old_erode(solid, radius))


@pytest.mark.parametrize("seed", range(6))
def test_large_radii_equal_an_exact_reference(seed: int) -> None:
    # cv2.dilate with a 1025x1025 disk takes seconds even on small masks: compare large radii
    # against an independent exact O(area) reference instead.
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(20, 300, 2))
    mask = blobs(height, width, seed, density=float(rng.choice([0.0005, 0.005, 0.05])))
    radius = int(rng.integers(41, max(42, max(height, width))))
    grown = refine_mask(mask, MaskRefine(dilate=radius))
    assert np.array_equal(grown, dilate_by_chords(mask == 255, radius))
    shrunk = refine_mask(255 - mask, MaskRefine(erode=radius))
    assert np.array_equal(shrunk, 255 - dilate_by_chords(mask == 255, radius))


@pytest.mark.parametrize(
    "box",
    [(30, 40, 60, 75), (0, 0, 20, 30), (70, 95, 90, 120), (0, 50, 90, 70), (10, 0, 30, 120)],
)
@pytest.mark.parametrize("radius", [5, 12, 33])
def test_one_object_anywhere_equals_before(box: tuple[int, int, int, int], radius: int) -> None:
    # The work is cut to the object's box (grown by the radius, or by a ring of one pixel):
    # objects inside the frame and touching each of its edges.
    top, left, bottom, right = box
    mask = np.zeros((90, 120), np.uint8)
    mask[top:bottom, left:right] = 255
    cv2.circle(mask, ((left + right) // 2, (top + bottom) // 2), 6, 0, -1)  # a hole
    assert np.array_equal(refine_mask(mask, MaskRefine(dilate=radius)), old_dilate(mask, radius))
    assert np.array_equal(refine_mask(mask, MaskRefine(erode=radius)), old_erode(mask, radius))


def test_dilate_then_erode_of_shapes_equals_before() -> None:
    mask = shapes(120, 160, seed=3)
    refine = MaskRefine(dilate=17, erode=11)
    assert np.array_equal(refine_mask(mask, refine), old_erode(old_dilate(mask, 17), 11))


def test_empty_and_full_masks() -> None:
    empty, full = np.zeros((30, 40), np.uint8), np.full((30, 40), 255, np.uint8)
    assert not refine_mask(empty, MaskRefine(dilate=25)).any()
    assert (refine_mask(full, MaskRefine(erode=25)) == 255).all()
    assert (refine_mask(full, MaskRefine(dilate=25)) == 255).all()
    assert not refine_mask(empty, MaskRefine(erode=25)).any()


@pytest.mark.parametrize("radius", [1, 3, 8])
def test_grey_masks_keep_the_max_filter_up_to_the_grey_limit(radius: int) -> None:
    grey = np.random.default_rng(radius).integers(0, 256, (40, 50), dtype=np.uint8)
    assert np.array_equal(refine_mask(grey, MaskRefine(dilate=radius)), old_dilate(grey, radius))
    assert np.array_equal(refine_mask(grey, MaskRefine(erode=radius)), old_erode(grey, radius))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5, 4.0, 7.5, 16.0, 40.0, 100.0])
def test_feather_is_the_gaussian_blur_of_before(sigma: float) -> None:
    mask = shapes(260, 300, seed=int(sigma * 10))
    got = refine_mask(mask, MaskRefine(feather=sigma)).astype(int)
    want = old_feather(mask, sigma).astype(int)
    error = np.abs(got - want)
    # Large sigmas are blurred at a reduced size: a level or two apart, never a visible edge.
    assert error.max() <= 3, (error.max(), error.mean())
    assert error.mean() <= 0.5


def test_feather_of_a_constant_mask_is_the_mask() -> None:
    for value in (0, 77, 255):
        mask = np.full((64, 80), value, np.uint8)
        assert (refine_mask(mask, MaskRefine(feather=50.0)) == value).all()


# ---- bounded work ----------------------------------------------------------------------


@pytest.fixture()
def filter_sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The kernel side of every OpenCV neighbourhood filter refine_mask runs."""
    sizes: list[int] = []

    def recording(name: str, side: Callable[..., int]) -> None:
        real = getattr(cv2, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            sizes.append(side(*args, **kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(cv2, name, wrapper)

    recording("dilate", lambda src, kernel, *a, **k: max(kernel.shape))
    recording("erode", lambda src, kernel, *a, **k: max(kernel.shape))
    recording(
        "GaussianBlur",
        lambda src, ksize, sigmaX=0.0, *a, **k: max(
            max(ksize), 2 * round(3 * max(sigmaX, k.get("sigmaY", 0.0))) + 1
        ),
    )
    yield sizes


@pytest.mark.parametrize("op", ["dilate", "erode", "feather"])
def test_no_filter_grows_with_the_radius(op: str, filter_sizes: list[int]) -> None:
    mask = shapes(600, 600, seed=1)
    refine_mask(mask, MaskRefine.model_validate({op: 512}))
    grey = mask // 2 + 60
    refine_mask(grey, MaskRefine.model_validate({op: 8 if op != "feather" else 512}))
    assert filter_sizes == [] or max(filter_sizes) <= 31, filter_sizes


# ---- radii bounded by the mask -----------------------------------------------------------


@pytest.mark.parametrize("op", ["dilate", "erode", "feather"])
def test_a_radius_over_the_longer_side_is_refused_naming_the_field(op: str) -> None:
    mask = shapes(60, 100, seed=2)
    refine_mask(mask, MaskRefine.model_validate({op: 100}))  # the longer side: allowed
    with pytest.raises(InvalidInput) as info:
        refine_mask(mask, MaskRefine.model_validate({op: 101}))
    assert info.value.details == [{"field": op, "message": info.value.details[0]["message"]}]
    assert "100" in info.value.message
    with pytest.raises(InvalidInput) as nested:
        refine_mask(mask, MaskRefine.model_validate({op: 101}), field_prefix="refine.")
    assert nested.value.details[0]["field"] == f"refine.{op}"


def test_the_radius_bound_follows_the_limits() -> None:
    mask = shapes(60, 100, seed=2)
    half = MaskLimits(max_radius_ratio=0.5)
    refine_mask(mask, MaskRefine(dilate=50), limits=half)
    with pytest.raises(InvalidInput):
        refine_mask(mask, MaskRefine(dilate=51), limits=half)


@pytest.mark.parametrize("op", ["dilate", "erode"])
def test_a_grey_mask_over_the_grey_limit_is_refused(op: str) -> None:
    grey = np.full((80, 80), 100, np.uint8)
    grey[20:60, 20:60] = 255
    refine_mask(grey, MaskRefine.model_validate({op: 8}))
    with pytest.raises(InvalidInput) as info:
        refine_mask(grey, MaskRefine.model_validate({op: 9}))
    assert info.value.details[0]["field"] == op
    assert "threshold" in info.value.message
    # Thresholded first, the mask is binary and any legal radius is fine.
    refine_mask(grey, MaskRefine.model_validate({op: 40, "threshold": 128}))
    wider = MaskLimits(grey_max_radius=12)
    refine_mask(grey, MaskRefine.model_validate({op: 12}), limits=wider)
