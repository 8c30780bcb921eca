# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""What happens when the mask is wrong: seeded perturbations of an ROI mask, as a segmenter or a hurried click would
get it wrong (too tight, too loose, shifted, a box, a disk around a click, a ragged boundary, or another object).

`perturb_mask(mask, "erode", 0.1, rng)` returns a new bool mask. Sizes are fractions of the ROI's size (the square
root of its area), so a strength means the same on a small sauce and on a large plate. Each perturbation is drawn
from the generator it is given: `sample_rng(seed, index)` gives every sample its own, so results do not depend on the
batch size or the order of evaluation. A perturbation that would leave no ROI, or no context, is refused, naming
itself and its strength. `parse_perturbations("none,erode:0.1,box")` reads the command line's list.

`"other"` stands for the worst mistake, the wrong object: the mask of another object of the same photo (drawn at
random among those given in `others` with at least a tenth of the ROI's area). It needs those masks: a segmentation
dataset gives them (the other samples of the same photo), the built-in benchmark writes them
(`<split>_object_masks/`); a sample without one is refused (evaluation leaves such samples out of that row and says
how many it kept).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from .image_utils_rvernet import mask_box


# kind -> (takes a strength, its meaning)
PERTURBATIONS = {
    "none": (False, "the given mask"),
    "erode": (True, "shrunk by strength x the ROI's size (too tight)"),
    "dilate": (True, "grown by strength x the ROI's size (too loose)"),
    "shift": (True, "moved by strength x the ROI's size in a random direction"),
    "box": (False, "the mask's bounding box"),
    "disk": (False, "a disk of the ROI's area around a random pixel of it (a click's guess)"),
    "noise": (True, "pixels within strength x the ROI's size of the boundary flipped at random"),
    "other": (False, "the mask of another object of the same photo (the wrong object)"),
}
# "other" needs the photo's other objects; training augmentation never draws it (it would teach the label to ignore
# the ROI).
NEEDS_OTHER_OBJECTS = frozenset({"other"})
# An object counts as another ROI candidate when its visible part is at least this fraction of the ROI's area.
OTHER_OBJECT_MIN_AREA = 0.1
# Erosion by this share of the ROI's size (or more) empties every ROI, whatever its shape: a disk, the shape erosion
# empties last, is gone at 0.58 (45 px radius) to 0.65 (3 px) of its size, every disk of 2 to 60 px radius at 0.7.
ERODE_EMPTIES_EVERY_ROI = 0.7


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of one sample: the same draw whatever the batch or the order."""
    return np.random.default_rng([seed, index])


def parse_perturbations(text: str, training: bool = False) -> list[tuple[str, float | None]]:
    """`"none,erode:0.1,dilate:0.2,box"` -> `[("none", None), ("erode", 0.1), ...]`, each checked. `training`:
    the list a training augmentation draws from, where "other" (the wrong object) is refused."""
    parsed = []
    for item in (part.strip() for part in text.split(",")):
        kind, _, strength = item.partition(":")
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown mask perturbation {kind!r} in {text!r}: one of {sorted(PERTURBATIONS)}.")
        if training and kind in NEEDS_OTHER_OBJECTS:
            raise ValueError(
                f"mask perturbation {kind!r} (another object's mask) is for evaluation only: training on it would "
                "teach the label to ignore the ROI. Remove it from the training augmentation's list."
            )
        takes_strength = PERTURBATIONS[kind][0]
        if takes_strength and not strength:
            raise ValueError(
                f"mask perturbation {kind!r} needs a strength, e.g. '{kind}:0.1' (a fraction of the ROI)."
            )
        if not takes_strength and strength:
            raise ValueError(f"mask perturbation {kind!r} takes no strength, got {item!r}.")
        value = None
        if strength:
            try:
                value = float(strength)
            except ValueError:
                raise ValueError(f"the strength of {item!r} is not a number.") from None
            if not (math.isfinite(value) and 0 < value <= 1):
                raise ValueError(f"the strength of {item!r} must be in (0, 1] (a fraction of the ROI's size).")
            if kind == "erode" and value >= ERODE_EMPTIES_EVERY_ROI:
                raise ValueError(
                    f"mask perturbation {item!r} can never apply: erosion by {ERODE_EMPTIES_EVERY_ROI:g} of the ROI's "
                    "size or more empties every ROI whatever its shape (even a disk is gone). Use a strength below "
                    f"{ERODE_EMPTIES_EVERY_ROI:g}, e.g. 'erode:0.1'."
                )
        parsed.append((kind, value))
    return parsed


def describe(kind: str, strength: float | None) -> str:
    return kind if strength is None else f"{kind}:{strength:g}"


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _disk(radius: int) -> torch.Tensor:
    grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2 + 1e-6).float()


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius < 1:
        return mask.copy()
    kernel = _disk(radius)[None, None]
    grown = F.conv2d(torch.from_numpy(mask.astype(np.float32))[None, None], kernel, padding=radius)
    return grown[0, 0].numpy() > 0.5


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    return ~_dilate(~mask, radius)


def _shift(mask: np.ndarray, distance: float, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    dx, dy = round(distance * math.cos(angle)), round(distance * math.sin(angle))
    height, width = mask.shape
    moved = np.zeros_like(mask)
    source = mask[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
    moved[max(0, dy) : max(0, dy) + source.shape[0], max(0, dx) : max(0, dx) + source.shape[1]] = source
    return moved


def other_objects(mask: np.ndarray, others) -> list[np.ndarray]:
    """The masks among `others` (bool (H, W) arrays of the same photo) that can stand for another object: not the
    ROI itself (IoU < 0.5 with it) and at least `OTHER_OBJECT_MIN_AREA` of its area outside it."""
    mask = np.asarray(mask, dtype=bool)
    area = mask.sum()
    kept = []
    for other in others or ():
        other = np.asarray(other, dtype=bool)
        if other.shape != mask.shape:
            raise ValueError(
                f"another object's mask is {other.shape[1]}x{other.shape[0]}, the ROI's {mask.shape[1]}x"
                f"{mask.shape[0]}: they must come from the same photo."
            )
        if (other & ~mask).sum() >= OTHER_OBJECT_MIN_AREA * area and mask_iou(mask, other) < 0.5:
            kept.append(other)
    return kept


def perturb_mask(
    mask: np.ndarray, kind: str, strength: float | None, rng: np.random.Generator, others=None
) -> np.ndarray:
    """A perturbed copy of a non-empty bool (H, W) mask (see `PERTURBATIONS`). Refuses, naming the perturbation, a
    result that is empty or covers the whole photo. `others`: the photo's other objects' masks (`"other"` only)."""
    mask = np.asarray(mask, dtype=bool)
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown mask perturbation {kind!r}: one of {sorted(PERTURBATIONS)}.")
    if not mask.any():
        raise ValueError("the mask to perturb is empty.")
    if kind == "other":
        candidates = other_objects(mask, others)
        if not candidates:
            raise ValueError(
                "mask perturbation other: this photo has no other object to take the mask of (none given, or none "
                f"with {OTHER_OBJECT_MIN_AREA:g} of the ROI's area outside it)."
            )
        return candidates[int(rng.integers(len(candidates)))].copy()
    size = math.sqrt(mask.sum())
    reach = round((strength or 0.0) * size)
    if kind == "none":
        result = mask.copy()
    elif kind == "erode":
        result = _erode(mask, reach)
    elif kind == "dilate":
        result = _dilate(mask, reach)
    elif kind == "shift":
        result = _shift(mask, (strength or 0.0) * size, rng)
    elif kind == "box":
        x0, y0, x1, y1 = mask_box(mask)
        result = np.zeros_like(mask)
        result[y0:y1, x0:x1] = True
    elif kind == "disk":
        ys, xs = np.nonzero(mask)
        pick = rng.integers(len(ys))
        yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
        result = (yy - ys[pick]) ** 2 + (xx - xs[pick]) ** 2 <= mask.sum() / math.pi
    else:  # noise: flip pixels near the boundary
        band = _dilate(mask, max(1, reach)) & ~_erode(mask, max(1, reach))
        result = np.where(band & (rng.random(mask.shape) < 0.5), ~mask, mask)
    name = describe(kind, strength)
    if not result.any():
        raise ValueError(
            f"mask perturbation {name} empties the ROI ({int(mask.sum())} pixels): use a smaller strength."
        )
    if result.all():
        raise ValueError(
            f"mask perturbation {name} covers the whole photo: no context is left; use a smaller strength."
        )
    return result


__all__ = [
    "ERODE_EMPTIES_EVERY_ROI",
    "NEEDS_OTHER_OBJECTS",
    "PERTURBATIONS",
    "describe",
    "mask_iou",
    "other_objects",
    "parse_perturbations",
    "perturb_mask",
    "sample_rng",
]
