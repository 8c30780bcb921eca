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


def test_another_objects_mask_is_one_of_the_photos_other_objects():
    """'other' (the wrong object): a mask drawn from the photo's other objects, never the ROI itself nor a sliver;
    refused when the photo has none, and never drawn by a training augmentation."""
    mask = rectangle()
    plate = rectangle(top=10, left=10, height=40, width=50)  # holds the ROI: 1200 px outside it
    sauce = rectangle(top=45, left=60, height=10, width=10)
    sliver = rectangle(top=0, left=0, height=1, width=30)  # 30 px < a tenth of the ROI's 600
    almost_the_roi = rectangle(height=20, width=32)
    picks = {
        perturb_mask(mask, "other", None, sample_rng(0, i), [plate, sauce, sliver, almost_the_roi]).sum()
        for i in range(40)
    }
    assert picks == {plate.sum(), sauce.sum()}
    assert np.array_equal(perturb_mask(mask, "other", None, sample_rng(3, 1), [sauce]), sauce)
    for others in (None, [], [sliver, almost_the_roi]):
        with pytest.raises(ValueError, match="mask perturbation other: this photo has no other object"):
            perturb_mask(mask, "other", None, sample_rng(0, 0), others)
    with pytest.raises(ValueError, match="must come from the same photo"):
        perturb_mask(mask, "other", None, sample_rng(0, 0), [np.ones((10, 10), bool)])
    assert parse_perturbations("other") == [("other", None)]
    with pytest.raises(ValueError, match="'other' .* is for evaluation only"):
        parse_perturbations("box,other", training=True)


def test_the_benchmark_records_each_scenes_other_objects_without_changing_a_byte():
    """The instance map of the scene's other objects comes from the same random draws: the photo and its ROI mask
    are what they were without it; the objects never overlap the ROI, and the occluder is one of them."""
    from rvernet_hf.synthetic import render_scene

    for seed in range(6):
        plain = render_scene("ketchup", 48, np.random.default_rng(seed), distractor_prob=0.5)
        pixels, mask, spec, objects = render_scene(
            "ketchup", 48, np.random.default_rng(seed), distractor_prob=0.5, objects=True
        )
        assert np.array_equal(plain[0], pixels) and np.array_equal(plain[1], mask) and plain[2] == spec
        assert objects.dtype == np.uint8 and objects.shape == mask.shape
        assert not (objects[mask] > 0).any() and len(np.unique(objects)) >= 3  # background + 2 context objects


def test_an_erosion_that_empties_every_roi_is_refused_when_parsed():
    """Issue 35.3: `--mask_perturbations erode:1` emptied every ROI, so every draw was skipped and the run trained on
    the exact masks without a word. An erosion by 0.7 of the ROI's size empties even a disk (the shape erosion
    empties last): refused when parsed, for training and evaluation alike."""
    for strength in ("0.7", "1"):
        for training in (True, False):
            with pytest.raises(ValueError, match=f"erode:{strength}' can never apply"):
                parse_perturbations(f"none,erode:{strength}", training=training)
    yy, xx = np.mgrid[:120, :120]
    for radius in (2, 3, 8, 21, 45):  # the threshold's claim, on disks
        disk = (yy - 60) ** 2 + (xx - 60) ** 2 <= radius**2
        with pytest.raises(ValueError, match="empties the ROI"):
            perturb_mask(disk, "erode", 0.7, sample_rng(0, 0))
        assert perturb_mask(disk, "erode", 0.5, sample_rng(0, 0)).any()
