# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""What to classify in a photo: `RoiPrompt`, the one parser and checker of prompts, as `SamProcessor` owns them for
SAM. Every entry builds it: the image processor (from SAM's argument names and nesting, `RoiPrompt.per_image`), the
pipeline, the command line and the app (from the pipeline's keywords `PROMPT_KEYS`, `RoiPrompt.from_keywords`).
Whatever the entry, a prompt is checked here, once, before any image is decoded or a segmenter runs; `checked`
then holds it against its photo's size (clicks and boxes inside, masks of its size).

A prompt is one kind (`RoiPrompt.kind`): given masks; clicks and/or boxes (the segmenter masks each ROI); a text
concept (SAM 3: every instance); every object; or nothing (the automatic ROI). Uploaded next to the weights with the
image processor (remote code): imports only numpy and torch.
"""

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .image_utils_rvernet import load_mask


# The prompt vocabulary of the pipeline, the command line and the app (the processor takes SAM's names for the
# same things: `roi_masks`, `input_points`, `input_labels`, `input_boxes`, `text`, `all_objects`).
PROMPT_KEYS = ("points", "point_labels", "box", "mask", "text", "all_objects")
PROMPT_KINDS = ("mask", "box", "points", "box+points", "text", "all_objects", "automatic")
POINT_LABELS = {1: "the object", 0: "not the object"}
# Each kind of ROI under its names in both vocabularies (the pipeline's / the processor's), for messages.
_NAMED = {
    "masks": "a mask (`mask` / `roi_masks`)",
    "points": "clicks (`points` / `input_points`)",
    "boxes": "a box (`box` / `input_boxes`)",
}

POINT_FORMS = (
    "[x, y] (one ROI from one click), [[x, y], ...] (one ROI from several clicks), [[[x, y], ...], ...] (several "
    "ROIs), or for one image SAM's batch nesting [[[[x, y], ...], ...]] (image, object, point, xy)"
)
BOX_FORMS = (
    "[x0, y0, x1, y1] (one ROI), [[x0, y0, x1, y1], ...] (several ROIs), or for one image SAM's batch nesting "
    "[[[x0, y0, x1, y1], ...]] (image, box, 4)"
)


@dataclass(frozen=True, eq=False)
class RoiPrompt:
    """One photo's prompt: which regions (ROIs) to classify. Checked when made (one kind, numbers finite, click
    labels 1 or 0, boxes with x1 > x0 and y1 > y0, text a non-empty string); `checked(shape)` holds it against the
    photo. Build it with `from_keywords` (one ROI) or `per_image` (SAM's nesting, several ROIs per image).

    Args:
        masks: given masks, one per ROI (anything `load_mask` reads; bool arrays at the photo's size once `checked`).
        points: per ROI, its clicks `(P, 2)` in pixels (x right, y down) and their labels `(P,)`: 1 the object,
            0 not the object.
        boxes: per ROI, `[x0, y0, x1, y1]` in pixels; with points, the i-th box and the i-th click group are one ROI.
        text: a concept ("sauce"): every instance a SAM 3 segmenter finds is an ROI.
        all_objects: every object of the photo is an ROI.
        index: which image of a call this is (named in errors).
    """

    masks: tuple = ()
    points: tuple = ()
    boxes: tuple = ()
    text: str | None = None
    all_objects: bool = False
    index: int = field(default=0, compare=False)

    def __post_init__(self):
        where = f"image {self.index}"
        if not isinstance(self.all_objects, (bool, np.bool_)):
            raise ValueError(f"`all_objects` of {where} must be True or False, got {self.all_objects!r}.")
        if self.text is not None and (not isinstance(self.text, str) or not self.text.strip()):
            raise ValueError(
                f"`text` of {where} must be a non-empty string (a concept, e.g. 'food'), got {self.text!r}."
            )
        points = tuple(_check_points(roi, labels, where) for roi, labels in self.points)
        boxes = tuple(_check_box(box, where) for box in self.boxes)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "masks", tuple(self.masks))
        given = [_NAMED[name] for name in ("masks", "points", "boxes") if getattr(self, name)]
        if self.text is not None and given + (["`all_objects`"] if self.all_objects else []):
            raise ValueError(
                f"`text` names the objects itself: {given[0] if given else '`all_objects`'} cannot be given with it ({where})."
            )
        if self.all_objects and given:
            raise ValueError(
                f"`all_objects` finds every object itself: {given[0]} cannot be given with it ({where}; prompt the "
                "objects you want instead, or leave them out)."
            )
        if self.masks and (self.points or self.boxes):
            raise ValueError(
                f"{where} has both a mask and a box/point prompt: give one prompt per image (a mask, or clicks and/or a box)."
            )
        if self.points and self.boxes and len(self.points) != len(self.boxes):
            raise ValueError(
                f"{where} has {len(self.boxes)} boxes and {len(self.points)} point groups: given together, each box "
                "pairs with one point group."
            )

    # ------------------------------------------------------------------------------------------------ what it is

    @property
    def kind(self) -> str:
        """One of `PROMPT_KINDS`."""
        if self.masks:
            return "mask"
        if self.text is not None:
            return "text"
        if self.all_objects:
            return "all_objects"
        if self.boxes:
            return "box+points" if self.points else "box"
        return "points" if self.points else "automatic"

    @property
    def finds_objects(self) -> bool:
        """Whether the segmenter decides how many ROIs there are (every object, or every instance of a concept)."""
        return self.all_objects or self.text is not None

    @property
    def num_rois(self) -> int | None:
        """How many ROIs the prompt names (None when the segmenter finds them)."""
        if self.finds_objects:
            return None
        return len(self.masks) or len(self.points) or len(self.boxes) or 1

    # ------------------------------------------------------------------------------------------------ building

    @classmethod
    def from_keywords(
        cls,
        points: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask: Any = None,
        text: str | None = None,
        all_objects: bool | None = False,
        index: int = 0,
    ) -> "RoiPrompt":
        """ONE ROI from the pipeline's, the command line's and the app's keywords (`PROMPT_KEYS`): `points` one
        click `[x, y]` or the clicks of one object `[[x, y], ...]` with `point_labels` (1 the object, 0 not; default
        all 1), `box` `[x0, y0, x1, y1]` (with points too, as SAM allows), `mask` one mask (array, tensor, PIL image
        or file), `text` a concept, `all_objects` every object; none of them: the automatic ROI."""
        where = f"image {index}"
        rois: dict[str, tuple] = {}
        if points is not None:
            points = _as_list(points)
            depth = _depth(points)
            if depth == 1:
                points = [points]
            elif depth != 2:
                raise ValueError(
                    f"`points` of {where} must be one click [x, y] or the clicks of one object [[x, y], ...], got "
                    f"nesting depth {depth}. Several objects: one input per object, or all_objects=True."
                )
            labels = [1] * len(points) if point_labels is None else _as_list(point_labels)
            labels = [labels] if _depth(labels) == 0 else labels
            rois["points"] = ((points, labels),)
        elif point_labels is not None:
            raise ValueError(f"{where} has point_labels but no points.")
        if box is not None:
            if _depth(_as_list(box)) != 1:
                raise ValueError(f"`box` of {where} must be one box [x0, y0, x1, y1], got {_short(box)}.")
            rois["boxes"] = (box,)
        if mask is not None:
            if isinstance(mask, (list, tuple)):
                raise ValueError(
                    f"`mask` of {where} must be one mask (an array, tensor, PIL image or file), got a "
                    f"{type(mask).__name__}: several objects are several inputs."
                )
            rois["masks"] = (mask,)
        return cls(text=text, all_objects=False if all_objects is None else all_objects, index=index, **rois)

    @classmethod
    def per_image(
        cls,
        num_images: int,
        batched: bool,
        roi_masks: Any = None,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        text: str | list[str] | None = None,
        all_objects: bool = False,
    ) -> list["RoiPrompt"]:
        """The image processor's prompt arguments (SAM's names and nesting, several ROIs per image) as one prompt per
        image. For one image (`batched=False`) SAM's batch nesting (with an image level) is accepted too. Per image:
        `roi_masks` a mask or a list of masks; `input_points` `[x, y]`, `[[x, y], ...]` (one ROI) or
        `[[[x, y], ...], ...]` (several ROIs) with `input_labels` in the same nesting without the xy;
        `input_boxes` `[x0, y0, x1, y1]` or a list of boxes; `text` a concept for every image or one per image."""
        if not isinstance(all_objects, (bool, np.bool_)):
            raise ValueError(f"`all_objects` must be True or False, got {all_objects!r}.")
        if not batched:
            input_points, input_labels, input_boxes = _unwrap_single_image(input_points, input_labels, input_boxes)
        masks = _per_image(roi_masks, num_images, "roi_masks", batched)
        points = _per_image(input_points, num_images, "input_points", batched)
        labels = _per_image(input_labels, num_images, "input_labels", batched)
        boxes = _per_image(input_boxes, num_images, "input_boxes", batched)
        texts = (
            [text] * num_images
            if isinstance(text, str) or text is None
            else _per_image(text, num_images, "text", batched)
        )
        prompts = []
        for index in range(num_images):
            rois: dict[str, tuple] = {}
            if masks[index] is not None:
                many = isinstance(masks[index], (list, tuple))
                rois["masks"] = tuple(masks[index]) if many else (masks[index],)
            if points[index] is not None:
                rois["points"] = tuple(_point_groups(points[index], labels[index], index))
            elif labels[index] is not None:
                raise ValueError(f"image {index} has input_labels but no input_points.")
            if boxes[index] is not None:
                rois["boxes"] = tuple(_box_list(boxes[index], index))
            if texts[index] is None and text is not None:
                raise ValueError(f"`text` of image {index} must be a non-empty string (a concept), got None.")
            prompts.append(cls(text=texts[index], all_objects=bool(all_objects), index=index, **rois))
        return prompts

    def checked(self, shape: tuple[int, int]) -> "RoiPrompt":
        """This prompt held against its photo of `shape` (H, W): clicks and boxes inside it, each mask read
        (`load_mask`: its size, binary, not empty, not the whole photo). Returns the prompt with its masks as bool
        arrays."""
        height, width = shape
        where = f"image {self.index}"
        for roi_points, _ in self.points:
            for x, y in roi_points:
                if not (0 <= x < width and 0 <= y < height):
                    raise ValueError(
                        f"input point ({x:g}, {y:g}) of {where} is outside the image (width {width}, height {height})."
                    )
        for x0, y0, x1, y1 in self.boxes:
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise ValueError(
                    f"input box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) of {where} must satisfy 0 <= x0 < x1 <= {width} and "
                    f"0 <= y0 < y1 <= {height} (x0, y0, x1, y1 in pixels)."
                )
        if not self.masks:
            return self
        return replace(self, masks=tuple(load_mask(mask, self.index, (height, width)) for mask in self.masks))


# ---------------------------------------------------------------------------------------------------- checks


def _check_points(points: Any, labels: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One ROI's clicks: (P, 2) finite xy and (P,) labels, each 1 (the object) or 0 (not the object)."""
    try:
        array = np.asarray(_as_list(points), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"each point of {where} must be [x, y] (numbers), got {_short(points)}.") from None
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ValueError(f"each point of {where} must be [x, y], got {_short(points)}.")
    if not np.isfinite(array).all():
        raise ValueError(f"the points of {where} must be finite numbers, got {_short(points)}.")
    labels = _as_list(labels)
    if not isinstance(labels, (list, tuple)) or len(labels) != len(array):
        raise ValueError(f"input_labels of {where} do not match its input_points (one label per point).")
    if any(not isinstance(v, (int, float, np.integer, np.floating)) or v not in POINT_LABELS for v in labels):
        raise ValueError(
            f"point labels of {where} must be 1 (the object) or 0 (not the object), one per click, got "
            f"{_short(labels)}."
        )
    return array, np.asarray(labels, dtype=np.int64)


def _check_box(box: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(_as_list(box), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"a box of {where} must be [x0, y0, x1, y1] (numbers), got {_short(box)}.") from None
    if array.shape != (4,):
        raise ValueError(f"a box of {where} must be [x0, y0, x1, y1], got {_short(box)}.")
    if not np.isfinite(array).all():
        raise ValueError(f"a box of {where} must hold finite numbers, got {_short(box)}.")
    x0, y0, x1, y1 = array
    if x1 <= x0 or y1 <= y0:
        raise ValueError(
            f"input box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) of {where} must satisfy x0 < x1 and y0 < y1 (it has zero or "
            "negative size; x0, y0, x1, y1 in pixels)."
        )
    return array


# ---------------------------------------------------------------------------------------------------- nesting


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (list, tuple, np.ndarray, torch.Tensor)) and len(value) > 0:
        value = value[0]
        depth += 1
    return depth


def _as_list(value: Any) -> Any:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    return value


def _short(value: Any) -> str:
    return f"{_as_list(value)!r:.80}"


def _unwrap_single_image(points: Any, labels: Any, boxes: Any) -> tuple[Any, Any, Any]:
    """Prompts for ONE image written in SAM's batch nesting (with an image level) -> the per-image forms."""
    points, labels, boxes = _as_list(points), _as_list(labels), _as_list(boxes)
    if _depth(points) == 4:
        if len(points) != 1:
            raise ValueError(
                f"input_points has SAM's batch nesting for {len(points)} images, but one image was given. "
                f"Accepted: {POINT_FORMS}."
            )
        points = points[0]
        if _depth(labels) == 3 and len(labels) == 1:
            labels = labels[0]
    if _depth(boxes) == 3:
        if len(boxes) != 1:
            raise ValueError(
                f"input_boxes has SAM's batch nesting for {len(boxes)} images, but one image was given. "
                f"Accepted: {BOX_FORMS}."
            )
        boxes = boxes[0]
    return points, labels, boxes


def _per_image(value: Any, num_images: int, name: str, batched: bool) -> list:
    """A per-image argument as a list with one entry per image."""
    if value is None:
        return [None] * num_images
    if not batched:
        return [value]
    if not isinstance(value, (list, tuple)) or len(value) != num_images:
        raise ValueError(f"`{name}` must have one entry per image ({num_images}), or None for an image.")
    return list(value)


def _point_groups(points: Any, labels: Any, index: int) -> list[tuple[Any, Any]]:
    """One image's points (and labels, same nesting without the xy; default 1) -> one (points, labels) per ROI."""
    points = _as_list(points)
    depth = _depth(points)
    if depth == 1:
        points = [[points]]
    elif depth == 2:
        points = [points]
    elif depth != 3:
        raise ValueError(f"input_points of image {index} has nesting depth {depth}; accepted: {POINT_FORMS}.")
    labels = _as_list(labels)
    if labels is None:
        labels = [[1] * len(roi) for roi in points]
    elif _depth(labels) == 0:
        labels = [[labels]]
    elif _depth(labels) == 1:
        labels = [labels] if len(points) == 1 else [[label] for label in labels]
    if len(labels) != len(points):
        raise ValueError(f"input_labels of image {index} do not match its input_points (one label per point).")
    return list(zip(points, labels))


def _box_list(boxes: Any, index: int) -> list[Any]:
    """One image's boxes: `[x0, y0, x1, y1]` is one ROI, a list of them several."""
    boxes = _as_list(boxes)
    depth = _depth(boxes)
    if depth == 1:
        return [boxes]
    if depth != 2:
        raise ValueError(f"input_boxes of image {index} has nesting depth {depth}; accepted: {BOX_FORMS}.")
    return list(boxes)


__all__ = ["BOX_FORMS", "POINT_FORMS", "POINT_LABELS", "PROMPT_KEYS", "PROMPT_KINDS", "RoiPrompt"]
