"""Mask perturbations (issue 23): what each one does to a mask, that each is seeded per sample, and that a setting
which would leave no ROI or no context is refused, naming it."""

import numpy as np
import pytest

from rvernet_hf.perturbations import mask_iou, parse_perturbations, perturb_mask, sample_rng


def rectangle(shape=(60, 80), top=20, left=20, height=20, width=30):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + height, left : left + width] = True
    return mask


def test_parsing_reads_kinds_and_strengths_and_refuses_the_rest():
    assert parse_perturbations("none, erode:0.1,box") == [("none", None), ("erode", 0.1), ("box", None)]
    for text, message in (
        ("melt:0.1", "unknown mask perturbation 'melt'"),
        ("erode", "needs a strength"),
        ("box:0.2", "takes no strength"),
        ("dilate:2", r"must be in \(0, 1\]"),
        ("shift:abc", "is not a number"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_perturbations(text)


def test_each_perturbation_does_what_it_says():
    mask = rectangle()
    rng = sample_rng(0, 0)
    eroded = perturb_mask(mask, "erode", 0.1, rng)
    dilated = perturb_mask(mask, "dilate", 0.1, rng)
    assert (eroded <= mask).all() and eroded.sum() < mask.sum()  # inside, smaller
    assert (dilated >= mask).all() and dilated.sum() > mask.sum()
    radius = round(0.1 * np.sqrt(mask.sum()))  # 2 px of a 600-px ROI
    assert eroded[20 + radius : 40 - radius, 20 + radius : 50 - radius].all() and not eroded[20, 20]
    shifted = perturb_mask(mask, "shift", 0.2, rng)
    assert shifted.sum() == mask.sum() and mask_iou(mask, shifted) < 1  # moved whole, inside the frame
    lshape = mask.copy()
    lshape[20:30, 20:35] = False
    assert np.array_equal(perturb_mask(lshape, "box", None, rng), mask)  # the bounding box
    disk = perturb_mask(mask, "disk", None, rng)
    assert abs(int(disk.sum()) - 600) < 60 and (disk & mask).any()  # the ROI's area, around one of its pixels
    noisy = perturb_mask(mask, "noise", 0.1, rng)
    changed = noisy != mask
    assert changed.any() and not changed[25:35, 28:42].any()  # only near the boundary
    assert np.array_equal(perturb_mask(mask, "none", None, rng), mask)


def test_each_sample_draws_its_own_perturbation_the_same_every_time():
    mask = rectangle()
    for kind in ("shift", "disk", "noise"):
        strength = None if kind == "disk" else 0.2
        first = perturb_mask(mask, kind, strength, sample_rng(7, 3))
        assert np.array_equal(first, perturb_mask(mask, kind, strength, sample_rng(7, 3)))
        others = [perturb_mask(mask, kind, strength, sample_rng(7, index)) for index in range(4, 8)]
        assert any(not np.array_equal(first, other) for other in others)


def test_a_perturbation_that_leaves_no_roi_or_no_context_is_refused():
    thin = rectangle(height=2, width=30)
    with pytest.raises(ValueError, match="mask perturbation erode:0.5 empties the ROI"):
        perturb_mask(thin, "erode", 0.5, sample_rng(0, 0))
    big = rectangle(shape=(20, 20), top=2, left=2, height=16, width=16)
    with pytest.raises(ValueError, match="mask perturbation dilate:0.5 covers the whole photo"):
        perturb_mask(big, "dilate", 0.5, sample_rng(0, 0))
