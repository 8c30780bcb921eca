# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""What happens when the mask is wrong: seeded perturbations of an ROI mask, as a segmenter or a hurried click would
get it wrong (too tight, too loose, shifted, a box, a disk around a click, a ragged boundary).

`perturb_mask(mask, "erode", 0.1, rng)` returns a new bool mask. Sizes are fractions of the ROI's size (the square
root of its area), so a strength means the same on a small sauce and on a large plate. Each perturbation is drawn
from the generator it is given: `sample_rng(seed, index)` gives every sample its own, so results do not depend on the
batch size or the order of evaluation. A perturbation that would leave no ROI, or no context, is refused, naming
itself and its strength. `parse_perturbations("none,erode:0.1,box")` reads the command line's list.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F


# kind -> (takes a strength, its meaning)
PERTURBATIONS = {
    "none": (False, "the given mask"),
    "erode": (True, "shrunk by strength x the ROI's size (too tight)"),
    "dilate": (True, "grown by strength x the ROI's size (too loose)"),
    "shift": (True, "moved by strength x the ROI's size in a random direction"),
    "box": (False, "the mask's bounding box"),
    "disk": (False, "a disk of the ROI's area around a random pixel of it (a click's guess)"),
    "noise": (True, "pixels within strength x the ROI's size of the boundary flipped at random"),
}


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of one sample: the same draw whatever the batch or the order."""
    return np.random.default_rng([seed, index])


def parse_perturbations(text: str) -> list[tuple[str, float | None]]:
    """`"none,erode:0.1,dilate:0.2,box"` -> `[("none", None), ("erode", 0.1), ...]`, each checked."""
    parsed = []
    for item in (part.strip() for part in text.split(",")):
        kind, _, strength = item.partition(":")
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown mask perturbation {kind!r} in {text!r}: one of {sorted(PERTURBATIONS)}.")
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


def perturb_mask(mask: np.ndarray, kind: str, strength: float | None, rng: np.random.Generator) -> np.ndarray:
    """A perturbed copy of a non-empty bool (H, W) mask (see `PERTURBATIONS`). Refuses, naming the perturbation, a
    result that is empty or covers the whole photo."""
    mask = np.asarray(mask, dtype=bool)
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown mask perturbation {kind!r}: one of {sorted(PERTURBATIONS)}.")
    if not mask.any():
        raise ValueError("the mask to perturb is empty.")
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
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        result = np.zeros_like(mask)
        result[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True
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


__all__ = ["PERTURBATIONS", "describe", "mask_iou", "parse_perturbations", "perturb_mask", "sample_rng"]
