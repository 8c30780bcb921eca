# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""ROI masks for RveRNet: prompts (`prompts_rvernet.RoiPrompt`: given masks, boxes, clicks, text, every object, or
nothing) -> bool masks, one per ROI (`find_roi_masks`), with the segmenter's settings as one object
(`SegmenterSettings`, each default written once here). The models themselves run in `segmenters_rvernet`.

`RveRNetImageProcessor` calls this module and keeps to pixels. This file is uploaded next to the weights with the
processor (remote code): it imports only torch, numpy and transformers.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from .prompts_rvernet import RoiPrompt
from .segmenters_rvernet import DEFAULT_SEGMENTER, TEXT_FAMILIES, ImageEmbedding, Segmenter, TextSegmenter


logger = logging.get_logger(__name__)

AUTO_ROI_STRATEGIES = ("sam_grid", "center")
ALL_OBJECTS_STRATEGIES = ("adaptive", "grid")


# ----------------------------------------------------------------------------------------------- settings
# The segmenter's settings, each default written once, here. `RveRNetImageProcessor` saves and takes them flat
# (`sam_model_name_or_path`, `auto_roi_points_per_side`, `all_objects_nms_threshold`, `text_score_threshold`, ...):
# a field's flat name is its group's prefix and its own name, or the `flat` name in its metadata.


@dataclass
class AutoRoiSettings:
    """The automatic ROI, for an image given without a mask or prompt (flat names `auto_roi`, `auto_roi_*`).

    Args:
        strategy (`str`, defaults to `"sam_grid"`, saved as `auto_roi`):
            `"sam_grid"`: the segmenter prompted with each point of a `points_per_side` square grid; among candidate
            masks whose area is within [`min_area`, `max_area`] of the image, the highest `predicted IoU -
            center_weight * distance of its centroid from the image centre (as a fraction of the half-diagonal)` wins
            (ties: the earlier grid point). `"center"`: no segmenter; the central box.
        points_per_side (`int`, defaults to 4), min_area (`float`, 0.02), max_area (`float`, 0.8),
        center_weight (`float`, 0.2): see `strategy`.
        fallback_fraction (`float`, defaults to 0.5): when the segmenter yields no usable mask (none in the area
            range, or an empty mask for a prompt): for a box prompt the box itself, for clicks a disk around the
            positive clicks, otherwise the central box covering this fraction of each side; a warning is logged.
            The ROI is never empty.
    """

    strategy: str = field(default="sam_grid", metadata={"flat": "auto_roi"})
    points_per_side: int = 4
    min_area: float = 0.02
    max_area: float = 0.8
    center_weight: float = 0.2
    fallback_fraction: float = 0.5

    def validate(self) -> None:
        if self.strategy not in AUTO_ROI_STRATEGIES:
            raise ValueError(f"`auto_roi` must be one of {AUTO_ROI_STRATEGIES}, got {self.strategy!r}.")
        if not 0.0 <= self.min_area < self.max_area <= 1.0:
            raise ValueError("`auto_roi_min_area` and `auto_roi_max_area` must satisfy 0 <= min < max <= 1.")
        _check_count("auto_roi_points_per_side", self.points_per_side)
        _check_setting_range("auto_roi_center_weight", self.center_weight, 0.0, math.inf)
        if not 0.0 < self.fallback_fraction <= 1.0:
            raise ValueError(f"`auto_roi_fallback_fraction` must be in (0, 1], got {self.fallback_fraction!r}.")


@dataclass
class AllObjectsSettings:
    """Every object of a photo (`all_objects=True`; flat names `all_objects_*`): the segmenter is prompted with each
    point of a `points_per_side` square grid, `points_per_batch` points per decoder call and one image embedding per
    image. Each point's three candidates are kept when their predicted IoU >= `pred_iou_threshold`, their stability
    (IoU of the mask thresholded at `mask_threshold +- stability_offset`) >= `stability_threshold` and their area is
    within [`min_area`, `max_area`] of the photo; then non-maximum suppression on mask IoU (`nms_threshold`;
    overlapping objects keep their own masks), best predicted IoU first, at most `max_regions` per image. An image
    where nothing passes gets its automatic ROI, with a warning. The defaults are those of SAM's automatic mask
    generator, not tuned here: no real segmenter weights are available to this project's test machines.
    `stability_offset` is not a saved setting.

    `strategy` (`"adaptive"`, the default, or `"grid"`): which grid points are decoded. `"grid"` decodes every point,
    as transformers' `mask-generation` pipeline does. `"adaptive"` decodes the grid coarse to fine (every 4th point,
    then every 2nd, then the rest; each point at most once) and skips a point that lies well inside (more than one
    low-resolution cell from the edge of) a region already found: the smallest candidate of an earlier prompt that
    passed the filters. Most points of a photo fall on the
    table, a plate or a large dish found by the first prompts, so far fewer are decoded (`benchmarks/RESULTS.md`)."""

    points_per_side: int = 16
    points_per_batch: int = 64
    pred_iou_threshold: float = 0.88
    stability_threshold: float = 0.95
    stability_offset: float = field(default=1.0, metadata={"flat": None})
    nms_threshold: float = 0.7
    min_area: float = 0.001
    max_area: float = 0.95
    max_regions: int = 32
    strategy: str = "adaptive"

    def validate(self) -> None:
        if self.strategy not in ALL_OBJECTS_STRATEGIES:
            raise ValueError(f"`all_objects_strategy` must be one of {ALL_OBJECTS_STRATEGIES}, got {self.strategy!r}.")
        for name in ("points_per_side", "points_per_batch", "max_regions"):
            _check_count(f"all_objects_{name}", getattr(self, name))
        if not 0.0 <= self.min_area < self.max_area <= 1.0:
            raise ValueError("`all_objects_min_area` and `all_objects_max_area` must satisfy 0 <= min < max <= 1.")
        # The predicted IoU is a regression output, not bounded to [0, 1]: any finite threshold is meaningful.
        _check_setting_range("all_objects_pred_iou_threshold", self.pred_iou_threshold, -math.inf, math.inf)
        for name in ("stability_threshold", "nms_threshold"):  # ratios of areas
            _check_setting_range(f"all_objects_{name}", getattr(self, name), 0.0, 1.0)


@dataclass
class TextSettings:
    """Text prompts (SAM 3; flat names `text_*`): an instance is kept when its score >= `score_threshold` and its
    mask probability >= `mask_threshold` (SAM 3's defaults)."""

    score_threshold: float = 0.3
    mask_threshold: float = 0.5

    def validate(self) -> None:
        _check_setting_range("text_score_threshold", self.score_threshold, 0.0, 1.0)
        _check_setting_range("text_mask_threshold", self.mask_threshold, 0.0, 1.0)


@dataclass
class SegmenterSettings:
    """Everything about the ROI masks that the segmenter makes, as one object (flat names `sam_*`, `mask_threshold`,
    and those of its groups).

    Args:
        model_name_or_path (`str`, defaults to `"facebook/sam-vit-base"`, saved as `sam_model_name_or_path`):
            Promptable segmenter checkpoint (Hub id or folder) of any family that `AutoModelForMaskGeneration` loads:
            SAM ViT-B/L/H and SlimSAM, SAM-HQ, SAM 2 / 2.1, EdgeTAM, the SAM 3 tracker; SAM 3 for text. Loaded
            lazily on the first call that needs it (never when masks are given), once per process.
        revision (`str`, *optional*, `sam_revision`): Revision of the checkpoint.
        device (`str`, *optional*, `sam_device`): Where it runs; defaults to CUDA when available, else CPU.
        dtype (`str`, defaults to `"auto"`, `sam_dtype`): `"auto"` (bfloat16 on a GPU that supports it, float16 on
            other GPUs, float32 on CPU), or a dtype name.
        batch_size (`int`, defaults to 4, `sam_batch_size`): Images per image-encoder forward pass.
        mask_threshold (`float`, defaults to 0.0): Threshold on the mask logits.
        auto_roi, all_objects, text: see `AutoRoiSettings`, `AllObjectsSettings`, `TextSettings`.
    """

    model_name_or_path: str = field(default=DEFAULT_SEGMENTER, metadata={"flat": "sam_model_name_or_path"})
    revision: str | None = field(default=None, metadata={"flat": "sam_revision"})
    device: str | None = field(default=None, metadata={"flat": "sam_device"})
    dtype: str = field(default="auto", metadata={"flat": "sam_dtype"})
    batch_size: int = field(default=4, metadata={"flat": "sam_batch_size"})
    mask_threshold: float = 0.0
    auto_roi: AutoRoiSettings = field(default_factory=AutoRoiSettings, metadata={"prefix": "auto_roi_"})
    all_objects: AllObjectsSettings = field(default_factory=AllObjectsSettings, metadata={"prefix": "all_objects_"})
    text: TextSettings = field(default_factory=TextSettings, metadata={"prefix": "text_"})

    @staticmethod
    def _flat_fields(settings_class: type, prefix: str = "") -> dict[str, Any]:
        """flat name -> the dataclass field it holds, for one group (groups are read by their own prefix)."""
        names = {}
        for item in fields(settings_class):
            if "prefix" in item.metadata:
                continue
            flat = item.metadata.get("flat", prefix + item.name)
            if flat is not None:
                names[flat] = item
        return names

    @classmethod
    @functools.cache  # read on every processor call: the table is the class's, made once
    def flat_fields(cls) -> dict[str, tuple[str | None, Any]]:
        """Every flat (saved) name -> (its group's attribute, or None for the top level; the dataclass field)."""
        table = {name: (None, item) for name, item in cls._flat_fields(cls).items()}
        for group in fields(cls):
            if "prefix" in group.metadata:
                for name, item in cls._flat_fields(group.default_factory, group.metadata["prefix"]).items():
                    table[name] = (group.name, item)
        return table

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> "SegmenterSettings":
        """The settings from their flat names (`values` may hold other keys; missing names take the defaults)."""
        settings = cls()
        for name, (group, item) in cls.flat_fields().items():
            if name in values:
                setattr(getattr(settings, group) if group else settings, item.name, values[name])
        return settings

    def to_flat(self) -> dict[str, Any]:
        """The settings under their flat (saved) names."""
        return {
            name: getattr(getattr(self, group) if group else self, item.name)
            for name, (group, item) in self.flat_fields().items()
        }

    @classmethod
    def convert_flat(cls, name: str, value: Any) -> Any:
        """A flat setting's value in its field's type (`"4"` or 4.0 -> 4 for a count); None stays None."""
        kind = cls.flat_fields()[name][1].type
        return kind(value) if kind in (int, float, str) and value is not None else value

    def validate(self) -> None:
        """Refuse, naming the flat setting, a value the segmenter cannot use."""
        if self.batch_size < 1:
            raise ValueError(f"`sam_batch_size` must be >= 1, got {self.batch_size}.")
        if self.dtype != "auto" and not isinstance(
            getattr(torch, str(self.dtype).replace("torch.", ""), None), torch.dtype
        ):
            raise ValueError(
                f"`sam_dtype` must be 'auto' or a torch dtype name (e.g. 'bfloat16'), got {self.dtype!r}."
            )
        _check_setting_range("mask_threshold", self.mask_threshold, -math.inf, math.inf)
        for group in (self.auto_roi, self.all_objects, self.text):
            group.validate()


def _check_setting_range(name: str, value: float, low: float, high: float) -> None:
    """A finite number in [low, high] (a NaN compares false to everything and would pass every filter silently)."""
    if not (math.isfinite(value) and low <= value <= high):
        allowed = "a finite number" if math.isinf(low) and math.isinf(high) else f"in [{low:g}, {high:g}]"
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


def _check_count(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"`{name}` must be >= 1, got {value} (a grid of 0 points finds nothing).")


# ----------------------------------------------------------------------------------------------- fallback masks


def center_mask(shape: tuple[int, int], fraction: float) -> np.ndarray:
    """The central box covering `fraction` of each side."""
    height, width = shape
    box_h, box_w = max(1, round(height * fraction)), max(1, round(width * fraction))
    top, left = (height - box_h) // 2, (width - box_w) // 2
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + box_h, left : left + box_w] = True
    if mask.all():  # a 1x1 image cannot have a context; keep the ROI anyway
        logger.warning("The image is too small to leave any context around the central ROI.")
    return mask


def box_mask(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, dtype=bool)
    rows = slice(int(math.floor(y0)), max(int(math.ceil(y1)), int(y0) + 1))
    mask[rows, int(x0) : max(int(math.ceil(x1)), int(x0) + 1)] = True
    return mask


def points_mask(prompt: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """A disk around the positive clicks (all clicks when none is positive)."""
    points, labels = prompt
    radius = max(1.0, 0.05 * min(shape))
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    positive = points[labels == 1] if (labels == 1).any() else points
    for x, y in positive:
        mask |= (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    return mask


# ----------------------------------------------------------------------------------------------- masks


def prompted_masks(
    segmenter: Segmenter, embedding: ImageEmbedding, prompt: RoiPrompt, threshold: float
) -> list[np.ndarray]:
    """One bool mask per ROI of one image (`prompt` holds `points` and/or `boxes`). Candidates are ranked by
    predicted IoU and the first non-empty one wins; an empty result falls back to the box itself or a disk around the
    positive clicks, with a warning."""
    points, boxes = list(prompt.points), list(prompt.boxes)
    count = len(points) if points else len(boxes)
    low_res, scores = segmenter.decode(embedding, points, boxes)
    order = scores.argsort(dim=-1, descending=True)
    best = low_res.gather(1, order[:, :, None, None].expand_as(low_res))  # (k, 3, h, w), best first
    masks = segmenter.to_original(best.flatten(0, 1), embedding, threshold).reshape(count, 3, *embedding.original_size)
    chosen = []
    for k in range(count):
        non_empty = [m for m in masks[k] if m.any()]
        if non_empty:
            chosen.append(non_empty[0])
            continue
        if boxes:
            fallback, how = box_mask(boxes[k], embedding.original_size), "the box itself"
        else:
            fallback, how = points_mask(points[k], embedding.original_size), "a disk around the positive points"
        logger.warning(f"The segmenter returned an empty mask for prompt {k}; falling back to {how}.")
        chosen.append(fallback)
    return chosen


def _grid(shape: tuple[int, int], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One single-click prompt per point of an n x n grid over a photo of `shape` (H, W), row by row."""
    height, width = shape
    points = [((i + 0.5) * width / n, (j + 0.5) * height / n) for j in range(n) for i in range(n)]
    return [(np.asarray([point]), np.ones(1, dtype=np.int64)) for point in points]


def _automatic_ranking(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    low_res: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    settings: AutoRoiSettings,
) -> torch.Tensor:
    """Per candidate (`low_res` (k, h, w), `scores` (k,)): `predicted IoU - center_weight * distance of its centroid
    from the centre`, or -inf where its area is outside [min_area, max_area] of the photo (judged on the
    low-resolution logits of the photo's area)."""
    candidates = segmenter.unpadded_low_res(low_res, embedding) > threshold
    crop_h, crop_w = candidates.shape[-2:]
    area = candidates.float().mean(dim=(-2, -1))
    ys = torch.linspace(0, 1, crop_h)[:, None].expand(crop_h, crop_w).to(candidates.device)
    xs = torch.linspace(0, 1, crop_w)[None, :].expand(crop_h, crop_w).to(candidates.device)
    total = candidates.float().sum(dim=(-2, -1)).clamp(min=1)
    cy = (candidates * ys).sum(dim=(-2, -1)) / total
    cx = (candidates * xs).sum(dim=(-2, -1)) / total
    distance = torch.sqrt((cx - 0.5) ** 2 + (cy - 0.5) ** 2) / math.sqrt(0.5)
    usable = (area >= settings.min_area) & (area <= settings.max_area)
    unusable = torch.tensor(-math.inf, device=scores.device)
    return torch.where(usable, scores - settings.center_weight * distance, unusable)


def _automatic_or_center(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    best_logits: torch.Tensor | None,
    threshold: float,
    settings: AutoRoiSettings,
) -> np.ndarray:
    """The chosen candidate at the photo's size, or (none usable) the central box, with a warning."""
    if best_logits is not None:
        mask = segmenter.to_original(best_logits[None], embedding, threshold)[0]
        if mask.any() and not mask.all():
            return mask
    logger.warning(
        "The segmenter found no usable ROI (no candidate mask within the area range "
        f"[{settings.min_area}, {settings.max_area}]); falling back to the central box."
    )
    return center_mask(embedding.original_size, settings.fallback_fraction)


def automatic_mask(
    segmenter: Segmenter, embedding: ImageEmbedding, threshold: float, settings: AutoRoiSettings
) -> np.ndarray:
    """The automatic ROI: the segmenter prompted with each point of a square grid (one decoder call); among the
    candidates whose area is within [min_area, max_area] of the photo, the highest `predicted IoU - center_weight *
    distance of its centroid from the centre` wins (ties: the earlier grid point); none usable: the central box."""
    low_res, scores = segmenter.decode(embedding, points=_grid(embedding.original_size, settings.points_per_side))
    low_res, scores = low_res.flatten(0, 1), scores.flatten()
    ranking = _automatic_ranking(segmenter, embedding, low_res, scores, threshold, settings)
    best = int(ranking.argmax())  # argmax returns the first maximum: ties go to the earlier grid point
    best_logits = low_res[best] if torch.isfinite(ranking[best]) else None
    return _automatic_or_center(segmenter, embedding, best_logits, threshold, settings)


def _nms_by_mask_iou(masks: torch.Tensor, scores: torch.Tensor, threshold: float, limit: int) -> list[int]:
    """Greedy non-maximum suppression on mask IoU (objects that overlap keep their own masks unless nearly the same
    region). `masks` (k, h, w) bool; returns kept indices, best first, at most `limit`."""
    if masks.shape[-1] > 64:  # IoU on a coarser grid: cheap, and enough to tell regions apart
        factor = math.ceil(masks.shape[-1] / 64)
        masks = torch.nn.functional.max_pool2d(masks[:, None].float(), factor, ceil_mode=True)[:, 0] > 0
    flat = masks.flatten(1).float()
    intersection = flat @ flat.T
    areas = flat.sum(dim=1)
    iou = intersection / (areas[:, None] + areas[None, :] - intersection).clamp(min=1)
    kept: list[int] = []
    for index in scores.argsort(descending=True).tolist():
        if all(float(iou[index, other]) <= threshold for other in kept):
            kept.append(index)
            if len(kept) == limit:
                break
    return kept


def _grid_levels(n: int, strategy: str) -> list[list[int]]:
    """The grid points (row-major indices into the n x n grid) decoded at each level: all at once for `"grid"`;
    for `"adaptive"` every 4th point (centred in its 4 x 4 cell), then every 2nd, then the rest, each point once."""
    if strategy == "grid":
        return [list(range(n * n))]
    levels, seen = [], set()
    for stride in (4, 2, 1):
        if stride > 1 and n < 2 * stride:
            continue
        rows = range(stride // 2, n, stride)
        level = [j * n + i for j in rows for i in rows if j * n + i not in seen]
        seen.update(level)
        levels.append(level)
    return levels


class _Candidates:
    """Every-object candidates gathered over decoder calls on one image: those that pass the filters (low-resolution
    logits and predicted IoUs), the automatic ROI's best among all, and the region already found (`covered`, on the
    low-resolution grid of the photo's area) that tells the adaptive strategy which points to skip."""

    def __init__(self, segmenter, embedding, threshold, settings: AllObjectsSettings, auto_roi: AutoRoiSettings):
        self.segmenter, self.embedding, self.threshold = segmenter, embedding, threshold
        self.settings, self.auto_roi = settings, auto_roi
        self.logits: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.best_rank, self.best_logits = -math.inf, None
        self.covered: torch.Tensor | None = None
        self.prompts = 0

    def decode(self, prompts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Decode single-click prompts (`points_per_batch` per decoder call) and gather their candidates."""
        for start in range(0, len(prompts), self.settings.points_per_batch):
            batch = prompts[start : start + self.settings.points_per_batch]
            low_res, scores = self.segmenter.decode(self.embedding, points=batch)
            self.prompts += len(batch)
            self._add(low_res, scores)

    def _add(self, low_res: torch.Tensor, scores: torch.Tensor) -> None:
        settings, count = self.settings, low_res.shape[0]
        low_res, scores = low_res.flatten(0, 1), scores.flatten()  # (k*3, h, w), (k*3,)
        ranking = _automatic_ranking(self.segmenter, self.embedding, low_res, scores, self.threshold, self.auto_roi)
        index = int(ranking.argmax())
        if float(ranking[index]) > self.best_rank:  # strictly better: ties go to the earlier prompt
            self.best_rank, self.best_logits = float(ranking[index]), low_res[index].clone()
        cropped = self.segmenter.unpadded_low_res(low_res, self.embedding)
        strict = (cropped > self.threshold + settings.stability_offset).flatten(1).sum(1)
        loose = (cropped > self.threshold - settings.stability_offset).flatten(1).sum(1)
        stability = strict / loose.clamp(min=1)
        found = cropped > self.threshold
        area = found.flatten(1).float().mean(1)
        keep = (scores >= settings.pred_iou_threshold) & (stability >= settings.stability_threshold)
        keep &= (area >= settings.min_area) & (area <= settings.max_area)
        self.logits.append(low_res[keep])
        self.scores.append(scores[keep])
        # Per prompt, its smallest passing candidate is a region found: later points inside it are skipped.
        sizes = torch.where(keep, area, torch.full_like(area, math.inf)).view(count, -1)
        smallest = sizes.argmin(dim=1)
        passed = torch.isfinite(sizes.gather(1, smallest[:, None]))[:, 0]
        regions = found.view(count, -1, *found.shape[-2:])[torch.arange(count), smallest][passed]
        if regions.shape[0]:
            union = regions.any(dim=0)
            self.covered = union if self.covered is None else self.covered | union

    def uncovered(self, prompts: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The single-click prompts whose point is not well inside a region already found: the regions are eroded by
        one low-resolution cell first, so that a point near a boundary (where a coarse mask may spill onto a small
        neighbour) is decoded rather than skipped."""
        if self.covered is None:
            return prompts
        outside = (~self.covered)[None, None].float()
        core = torch.nn.functional.max_pool2d(outside, 3, stride=1, padding=1)[0, 0] == 0
        height, width = self.embedding.original_size
        rows, cols = core.shape
        kept = []
        for prompt in prompts:
            x, y = prompt[0][0]
            if not core[min(int(y * rows / height), rows - 1), min(int(x * cols / width), cols - 1)]:
                kept.append(prompt)
        return kept

    def masks(self) -> list[np.ndarray]:
        """Non-maximum suppression on the low-resolution masks; only the kept ones go to the photo's size."""
        logits, scores = torch.cat(self.logits), torch.cat(self.scores)
        if logits.shape[0] == 0:
            return []
        cropped = self.segmenter.unpadded_low_res(logits, self.embedding) > self.threshold
        chosen = _nms_by_mask_iou(cropped, scores, self.settings.nms_threshold, self.settings.max_regions)
        masks = self.segmenter.to_original(logits[chosen], self.embedding, self.threshold)
        return [mask for mask in masks if mask.any() and not mask.all()]


def all_object_masks(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    threshold: float,
    settings: AllObjectsSettings,
    auto_roi: AutoRoiSettings | None = None,
) -> tuple[list[np.ndarray], torch.Tensor | None]:
    """Every object: the segmenter prompted with points of a square grid (all of them, or coarse to fine skipping
    points inside regions already found: `settings.strategy`), `points_per_batch` points per decoder call and one
    image embedding; each point's three candidates filtered by predicted IoU, stability (IoU of the mask thresholded
    at `threshold +- stability_offset`) and area, then non-maximum suppression on mask IoU, best predicted IoU first,
    at most `max_regions`, on the low-resolution masks. Returns the bool masks at the photo's size (possibly none) and
    the low-resolution logits of the automatic ROI chosen among the same candidates (`auto_roi`'s rule; None when none
    is usable), so that a photo where no object passes needs no second decoder pass."""
    grid = _grid(embedding.original_size, settings.points_per_side)
    candidates = _Candidates(segmenter, embedding, threshold, settings, auto_roi or AutoRoiSettings())
    for level in _grid_levels(settings.points_per_side, settings.strategy):
        candidates.decode(candidates.uncovered([grid[i] for i in level]))
    logger.info(f"every object: {candidates.prompts} of {len(grid)} grid points decoded ({settings.strategy}).")
    return candidates.masks(), candidates.best_logits


def segment_text(
    segmenter: "TextSegmenter",
    images: list[np.ndarray],
    prompts: list[RoiPrompt],
    batch_size: int,
    score_threshold: float,
    mask_threshold: float,
    fallback_fraction: float,
) -> list[list[np.ndarray]]:
    """Masks from a text prompt (`prompts[i].text`), `batch_size` images per forward pass; an image where no
    instance passes gets the central box, with a warning (the ROI is never empty)."""
    results: list[list[np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        chunk, chunk_prompts = images[start : start + batch_size], prompts[start : start + batch_size]
        found = segmenter.segment_text(chunk, [p.text for p in chunk_prompts], score_threshold, mask_threshold)
        for image, prompt, masks in zip(chunk, chunk_prompts, found):
            masks = [mask for mask in masks if mask.any() and not mask.all()]
            if not masks:
                logger.warning(
                    f"No instance of {prompt.text!r} found in image {prompt.index} (score "
                    f">= {score_threshold}); falling back to the central box."
                )
                masks = [center_mask(image.shape[:2], fallback_fraction)]
            results.append(masks)
    return results


def segment(
    segmenter: Segmenter,
    images: list[np.ndarray],
    prompts: list[RoiPrompt],
    batch_size: int,
    threshold: float,
    auto_roi: AutoRoiSettings,
    all_objects: AllObjectsSettings | None = None,
) -> list[list[np.ndarray]]:
    """Masks for images that need the segmenter: `prompts[i]` (points and/or boxes, every object, or nothing: the
    automatic ROI) is image i's. An image where no object passes the filters gets its automatic ROI, with a warning.

    The image encoder runs once per image, `batch_size` images per forward pass; all prompts of an image share its
    embedding in one decoder call. Returns, per request, a list of bool masks at the original size.
    """
    results: list[list[np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        embeddings = segmenter.embed(images[start : start + batch_size])
        for offset, embedding in enumerate(embeddings):
            prompt = prompts[start + offset]
            if prompt.all_objects:
                settings = all_objects or AllObjectsSettings()
                masks, automatic = all_object_masks(segmenter, embedding, threshold, settings, auto_roi)
                if not masks:  # the automatic ROI among the grid's own candidates: no second decoder pass
                    logger.warning(
                        f"No object of image {prompt.index} passed the every-object filters; using its automatic ROI."
                    )
                    masks = [_automatic_or_center(segmenter, embedding, automatic, threshold, auto_roi)]
                results.append(masks)
            elif prompt.kind == "automatic":
                results.append([automatic_mask(segmenter, embedding, threshold, auto_roi)])
            else:
                results.append(prompted_masks(segmenter, embedding, prompt, threshold))
    return results


def find_roi_masks(
    images: list[np.ndarray],
    prompts: list[RoiPrompt],
    settings: SegmenterSettings,
    get_segmenter: Callable[[], "Segmenter | TextSegmenter"],
    segmenter_name: str,
) -> list[list[np.ndarray]]:
    """Per image, its bool ROI masks at the original size, from its prompt (`RoiPrompt`, already `checked` against
    the image): given masks as they are; the central box for an automatic ROI under `auto_roi="center"`; else from
    the segmenter that `get_segmenter()` returns (the image processor's: loaded once per process, or the one it was
    given), called only when an image needs it; `segmenter_name` names it in errors. One rule for every source: an
    ROI must leave a context (a mask covering the whole image is refused, naming it)."""
    masks: list[list[np.ndarray] | None] = [list(prompt.masks) or None for prompt in prompts]
    automatic = [index for index, prompt in enumerate(prompts) if prompt.kind == "automatic"]
    if automatic:
        # What the plain `pipeline("image-classification")` does with a photo: say so once, it is one label.
        logger.warning_once(
            "An image without a mask or prompt gets ONE automatic ROI (the segmenter's most salient object, "
            f"auto_roi={settings.auto_roi.strategy!r}), so it yields one label; pass `all_objects=True` to label every "
            "object, or a box/points/mask to choose the object."
        )
    if settings.auto_roi.strategy == "center":
        for index in automatic:
            masks[index] = [center_mask(images[index].shape[:2], settings.auto_roi.fallback_fraction)]
    need = [index for index, found in enumerate(masks) if found is None]
    if need:
        segmenter = get_segmenter()
        text = any(prompts[index].text is not None for index in need)
        _check_prompt_kind(segmenter, text, segmenter_name)
        chosen_images, chosen_prompts = [images[i] for i in need], [prompts[i] for i in need]
        if text:
            found = segment_text(
                segmenter,
                chosen_images,
                chosen_prompts,
                batch_size=settings.batch_size,
                score_threshold=settings.text.score_threshold,
                mask_threshold=settings.text.mask_threshold,
                fallback_fraction=settings.auto_roi.fallback_fraction,
            )
        else:
            found = segment(
                segmenter,
                chosen_images,
                chosen_prompts,
                batch_size=settings.batch_size,
                threshold=settings.mask_threshold,
                auto_roi=settings.auto_roi,
                all_objects=settings.all_objects,
            )
        for index, image_masks in zip(need, found):
            masks[index] = image_masks
    for index, image_masks in enumerate(masks):
        for k, mask in enumerate(image_masks):
            if mask.all():
                height, width = mask.shape
                raise ValueError(
                    f"the ROI {k} of image {index} ({width}x{height}) covers the whole image: nothing is left for "
                    "the context tower. Give a smaller box or click, or a mask of the object."
                )
    return masks


def _check_prompt_kind(segmenter: "Segmenter | TextSegmenter", text: bool, name: str) -> None:
    """Text needs SAM 3; SAM 3 needs text (boxes, clicks and automatic ROIs need a box/click segmenter)."""
    takes_text = isinstance(segmenter, TextSegmenter)
    if text and not takes_text:
        raise ValueError(
            f"`text` needs a text-prompted segmenter (SAM 3, model_type 'sam3'), but the segmenter ({name}) is a "
            f"{segmenter.model_type!r} model, which takes boxes and clicks. Set `sam_model_name_or_path` to a SAM 3 "
            "checkpoint (e.g. facebook/sam3)."
        )
    if not text and takes_text:
        raise ValueError(
            "The segmenter is SAM 3 (text prompts): give `text=` (a concept such as 'food'), or use a "
            "box/click segmenter (SAM, SAM 2, or SAM 3's tracker checkpoint) for boxes, clicks and automatic ROIs."
        )


def segmenter_for(sam_model: Any, sam_image_processor: Any = None) -> "Segmenter | TextSegmenter":
    """An already-built promptable segmenter (any family of `SEGMENTER_FAMILIES`, or SAM 3 with its `Sam3Processor`)
    behind RveRNet's interface, or one already wrapped (used as it is); refused, naming it, if it is not one."""
    if isinstance(sam_model, (Segmenter, TextSegmenter)):
        return sam_model
    model_type = getattr(getattr(sam_model, "config", None), "model_type", None)
    if model_type in TEXT_FAMILIES:
        return TextSegmenter(sam_model, sam_image_processor)
    return Segmenter(sam_model, sam_image_processor)


__all__ = [
    "ALL_OBJECTS_STRATEGIES",
    "AUTO_ROI_STRATEGIES",
    "AllObjectsSettings",
    "AutoRoiSettings",
    "SegmenterSettings",
    "TextSettings",
    "find_roi_masks",
    "segment",
    "segment_text",
    "segmenter_for",
]
