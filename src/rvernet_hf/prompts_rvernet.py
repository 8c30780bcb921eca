# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Prompts for RveRNet's ROI masks, as `SamProcessor` owns them for SAM: the nesting of masks, clicks, boxes and text
per image, normalised into one request per image, every conflict and every coordinate checked before a segmenter runs.

A request is a dict: `masks` (given bool masks, one per ROI), or `points` (ROIs of clicks: (P, 2) xy and (P,) labels)
and/or `boxes` ((4,) x0, y0, x1, y1), and/or `text`, or `auto` (one automatic ROI) or `all` (every object); plus the
image's `index`. `segmentation_rvernet.find_roi_masks` turns requests into masks. Uploaded next to the weights with the
image processor (remote code): imports only numpy and torch.
"""

from typing import Any

import numpy as np
import torch

from .image_utils_rvernet import load_mask


POINT_FORMS = (
    "[x, y] (one ROI from one click), [[x, y], ...] (one ROI from several clicks), [[[x, y], ...], ...] (several "
    "ROIs), or for one image SAM's batch nesting [[[[x, y], ...], ...]] (image, object, point, xy)"
)
BOX_FORMS = (
    "[x0, y0, x1, y1] (one ROI), [[x0, y0, x1, y1], ...] (several ROIs), or for one image SAM's batch nesting "
    "[[[x0, y0, x1, y1], ...]] (image, box, 4)"
)


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


def unwrap_single_image_prompts(points: Any, labels: Any, boxes: Any) -> tuple[Any, Any, Any]:
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


def normalize_point_prompts(points: Any, labels: Any, index: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One image's points -> a list of ROIs, each (points (P, 2) float xy, labels (P,) int).

    Nesting: `[x, y]` is one ROI from one point; `[[x, y], ...]` one ROI from several points;
    `[[[x, y], ...], ...]` several ROIs. Labels follow the same nesting without the xy (default 1, foreground).
    """
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
    else:
        label_depth = _depth(labels)
        if label_depth == 0:
            labels = [[labels]]
        elif label_depth == 1:
            labels = [labels] if len(points) == 1 else [[label] for label in labels]
    if len(labels) != len(points) or any(len(a) != len(b) for a, b in zip(labels, points)):
        raise ValueError(f"input_labels of image {index} do not match its input_points (one label per point).")
    rois = []
    for roi_points, roi_labels in zip(points, labels):
        array = np.asarray(roi_points, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 2:
            raise ValueError(f"each point of image {index} must be [x, y], got {roi_points}.")
        rois.append((array, np.asarray(roi_labels, dtype=np.int64)))
    return rois


def normalize_box_prompts(boxes: Any, index: int) -> list[np.ndarray]:
    """One image's boxes -> a list of (4,) float arrays [x0, y0, x1, y1]; `[x0, y0, x1, y1]` is one ROI."""
    boxes = _as_list(boxes)
    depth = _depth(boxes)
    if depth == 1:
        boxes = [boxes]
    elif depth != 2:
        raise ValueError(f"input_boxes of image {index} has nesting depth {depth}; accepted: {BOX_FORMS}.")
    result = []
    for box in boxes:
        array = np.asarray(box, dtype=np.float64)
        if array.shape != (4,):
            raise ValueError(f"a box of image {index} must be [x0, y0, x1, y1], got {box}.")
        result.append(array)
    return result


def check_prompts_inside(index: int, height: int, width: int, points=(), boxes=()) -> None:
    for roi_points, _ in points:
        for x, y in roi_points:
            if not (0 <= x < width and 0 <= y < height):
                raise ValueError(
                    f"input point ({x:g}, {y:g}) of image {index} is outside the image (width {width}, height {height})."
                )
    for x0, y0, x1, y1 in boxes:
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(
                f"input box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) of image {index} must satisfy 0 <= x0 < x1 <= {width} "
                f"and 0 <= y0 < y1 <= {height} (x0, y0, x1, y1 in pixels)."
            )


def per_image(value: Any, num_images: int, name: str, batched: bool) -> list:
    """A per-image argument as a list with one entry per image."""
    if value is None:
        return [None] * num_images
    if not batched:
        return [value]
    if not isinstance(value, (list, tuple)) or len(value) != num_images:
        raise ValueError(f"`{name}` must have one entry per image ({num_images}), or None for an image.")
    return list(value)


def check_prompt_arguments(roi_masks, input_points, input_labels, input_boxes, all_objects, text) -> None:
    """Refuse arguments that exclude each other: `text` and `all_objects` find the objects themselves."""
    if not isinstance(all_objects, bool):
        raise ValueError(f"`all_objects` must be True or False, got {all_objects!r}.")
    if text is not None:
        given = {"roi_masks": roi_masks, "input_points": input_points, "input_boxes": input_boxes}
        given["all_objects"] = all_objects or None
        for name, value in given.items():
            if value is not None:
                raise ValueError(f"`text` names the objects itself: `{name}` cannot be given with it.")
    if all_objects:
        prompts = {
            "roi_masks": roi_masks,
            "input_points": input_points,
            "input_labels": input_labels,
            "input_boxes": input_boxes,
        }
        for name, value in prompts.items():
            if value is not None:
                raise ValueError(
                    f"`all_objects=True` finds every object itself: `{name}` cannot be given with it (prompt the "
                    "objects you want instead, or leave them out)."
                )


def prompts_per_image(count: int, batched: bool, roi_masks, input_points, input_labels, input_boxes, text) -> list:
    """The prompt arguments of a call as one `(mask, points, labels, boxes, text)` tuple per image (None where an
    image has none); for one image (`batched=False`), SAM's batch nesting is accepted too."""
    if not batched:  # SAM's batch nesting for one image: drop its image level
        input_points, input_labels, input_boxes = unwrap_single_image_prompts(input_points, input_labels, input_boxes)
    masks_in = per_image(roi_masks, count, "roi_masks", batched)
    points_in = per_image(input_points, count, "input_points", batched)
    labels_in = per_image(input_labels, count, "input_labels", batched)
    boxes_in = per_image(input_boxes, count, "input_boxes", batched)
    texts_in = [text] * count if isinstance(text, str) or text is None else per_image(text, count, "text", batched)
    for index, value in enumerate(texts_in):
        if text is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(
                f"`text` of image {index} must be a non-empty string (a concept, e.g. 'food'), got {value!r}."
            )
    return list(zip(masks_in, points_in, labels_in, boxes_in, texts_in))


def image_request(index: int, shape: tuple[int, int], prompts: tuple, all_objects: bool = False) -> dict[str, Any]:
    """One image's request (see the module docstring) from its `(mask, points, labels, boxes, text)`, checked against
    its `shape` (H, W): masks of the image's size, binary and not empty; clicks and boxes inside it."""
    mask, points, labels, boxes, text = prompts
    height, width = shape
    request: dict[str, Any] = {"index": index}
    if mask is not None:
        if points is not None or boxes is not None:
            raise ValueError(f"image {index} has both a mask and a box/point prompt: give one of them.")
        many = isinstance(mask, (list, tuple))  # a list of masks: several ROIs of this image
        request["masks"] = [load_mask(m, index, (height, width)) for m in (mask if many else [mask])]
        return request
    if points is not None:
        request["points"] = normalize_point_prompts(points, labels, index)
    elif labels is not None:
        raise ValueError(f"image {index} has input_labels but no input_points.")
    if boxes is not None:
        request["boxes"] = normalize_box_prompts(boxes, index)
    check_prompts_inside(index, height, width, request.get("points", ()), request.get("boxes", ()))
    if "points" in request and "boxes" in request and len(request["points"]) != len(request["boxes"]):
        raise ValueError(
            f"image {index} has {len(request['boxes'])} boxes and {len(request['points'])} point groups: "
            "given together, each box pairs with one point group."
        )
    if text is not None:
        request["text"] = text
    if len(request) == 1:
        request["all" if all_objects else "auto"] = True
    return request


__all__ = [
    "BOX_FORMS",
    "POINT_FORMS",
    "check_prompt_arguments",
    "image_request",
    "normalize_box_prompts",
    "normalize_point_prompts",
    "prompts_per_image",
]
