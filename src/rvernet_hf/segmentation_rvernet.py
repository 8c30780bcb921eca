# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""ROI masking for RveRNet: prompts (boxes, clicks, or nothing) -> one bool mask per ROI, with any promptable
segmenter that transformers ships behind `AutoModelForMaskGeneration`.

`RveRNetImageProcessor` calls this module and keeps to pixels. This file is uploaded next to the weights with the
processor (remote code): it imports only torch, numpy, PIL and transformers.

Supported families (`model_type`): SAM (`sam`: ViT-B/L/H and SlimSAM checkpoints), SAM-HQ (`sam_hq`), SAM 2 / 2.1
(`sam2`, `sam2_video`), EdgeTAM (`edgetam`, `edgetam_video`) and the SAM 3 tracker (`sam3_tracker`, `sam3_video`).
Their differences are handled here, in one place:

| family | image processor | embeddings | prompt frame | post-processing |
|---|---|---|---|---|
| SAM, SAM-HQ | resize the longest edge, pad to a square | a tensor (SAM-HQ: plus intermediate embeddings) | the resized image | needs the resized size |
| SAM 2, EdgeTAM, SAM 3 tracker | resize to a square | a list of feature levels | the square input | original size only |

For every family the image encoder runs once per image (images batched by `batch_size`), all prompts of an image go
through the mask decoder in one call (point groups padded with SAM's "not a point" label), and a batch whose images
have different numbers of prompts works.
"""

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.utils import logging


logger = logging.get_logger(__name__)

DEFAULT_SEGMENTER = "facebook/sam-vit-base"
# model_type -> how its image processor frames prompts and post-processes masks ("sam": resize + pad, "sam2": square)
SEGMENTER_FAMILIES = {
    "sam": "sam",
    "sam_hq": "sam",
    "sam2": "sam2",
    "sam2_video": "sam2",
    "edgetam": "sam2",
    "edgetam_video": "sam2",
    "sam3_tracker": "sam2",
    "sam3_video": "sam2",
}
FAMILY_NAMES = "SAM (ViT-B/L/H, SlimSAM), SAM-HQ, SAM 2 / 2.1, EdgeTAM, SAM 3 tracker; SAM 3 for text prompts"
# Segmenters that take a text prompt (a concept: every instance of it becomes an ROI), model_type -> its class.
TEXT_FAMILIES = {"sam3": "Sam3Model"}
_PAD_LABEL = -10  # SAM's and SAM 2's "not a point" label, used to pad point groups of different lengths

# One segmenter per (checkpoint, revision, device, dtype) per process, shared by every processor instance.
_SEGMENTER_CACHE: dict[tuple, "Segmenter"] = {}
_SEGMENTER_CACHE_LOCK = threading.Lock()


# ----------------------------------------------------------------------------------------------- prompts

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


# ----------------------------------------------------------------------------------------------- segmenters


@dataclass
class ImageEmbedding:
    """One image's encoder output, ready for the mask decoder."""

    decoder_inputs: dict[str, Any]  # the family's embedding keyword arguments, sliced to this image
    original_size: tuple[int, int]  # (H, W) of the photo
    prompt_frame: tuple[int, int]  # (H, W) of the image the prompt encoder's coordinates refer to
    input_size: tuple[int, int]  # (H, W) of the encoder input (the prompt frame plus any padding)


class Segmenter:
    """A promptable segmenter (a transformers mask-generation model and its image processor) behind one interface:
    `embed` (the image encoder, once per image), `decode` (every prompt of one image in one call) and `to_original`
    (the family's own post-processing to the photo's size)."""

    def __init__(self, model: Any, image_processor: Any = None, name: str | None = None):
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in SEGMENTER_FAMILIES:
            what = name or type(model).__name__
            raise ValueError(
                f"{what} is not a promptable segmenter RveRNet can use (model_type {model_type!r}). Supported "
                f"families: {FAMILY_NAMES} (model types {sorted(SEGMENTER_FAMILIES)})."
            )
        self.model = model
        self.model_type = model_type
        self.style = SEGMENTER_FAMILIES[model_type]
        self.image_processor = image_processor if image_processor is not None else default_image_processor(model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @torch.no_grad()
    def embed(self, images: list[np.ndarray]) -> list[ImageEmbedding]:
        """RGB uint8 arrays -> one `ImageEmbedding` each, from ONE image-encoder forward pass over all of them."""
        encoded = self.image_processor(images=[Image.fromarray(image) for image in images], return_tensors="pt")
        pixel_values = encoded["pixel_values"].to(device=self.device, dtype=self.dtype)
        output = self.model.get_image_embeddings(pixel_values)
        input_size = tuple(int(v) for v in pixel_values.shape[-2:])
        embeddings = []
        for i in range(len(images)):
            if self.model_type == "sam_hq":  # (embeddings, intermediate embeddings of the ViT layers)
                inputs = {
                    "image_embeddings": output[0][i : i + 1],
                    "intermediate_embeddings": [t[i : i + 1] for t in output[1]],
                }
            elif self.style == "sam":
                inputs = {"image_embeddings": output[i : i + 1]}
            else:  # a list of feature levels, finest first
                inputs = {"image_embeddings": [level[i : i + 1] for level in output]}
            original = tuple(int(v) for v in encoded["original_sizes"][i])
            frame = tuple(int(v) for v in encoded["reshaped_input_sizes"][i]) if self.style == "sam" else input_size
            embeddings.append(ImageEmbedding(inputs, original, frame, input_size))
        return embeddings

    def _to_frame(self, coords: np.ndarray, embedding: ImageEmbedding) -> np.ndarray:
        """Pixel coordinates of the photo (x, y, ...) -> the prompt encoder's frame."""
        scaled = np.array(coords, dtype=np.float64)
        scaled[..., 0::2] *= embedding.prompt_frame[1] / embedding.original_size[1]
        scaled[..., 1::2] *= embedding.prompt_frame[0] / embedding.original_size[0]
        return scaled

    @torch.no_grad()
    def decode(
        self,
        embedding: ImageEmbedding,
        points: list[tuple[np.ndarray, np.ndarray]] | None = None,
        boxes: list[np.ndarray] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every prompt of one image in one decoder call: `points` (one (P, 2) group + labels per ROI, padded here)
        and/or `boxes` ((4,) each; with points, the i-th box pairs with the i-th group). Returns the low-resolution
        mask logits `(k, 3, h, w)` and predicted IoUs `(k, 3)`, float32."""
        inputs = dict(embedding.decoder_inputs, multimask_output=True)
        if points:
            width = max(len(p) for p, _ in points)
            point_array = np.zeros((len(points), width, 2))
            label_array = np.full((len(points), width), _PAD_LABEL, dtype=np.int64)
            for k, (roi_points, roi_labels) in enumerate(points):
                point_array[k, : len(roi_points)] = self._to_frame(roi_points, embedding)
                label_array[k, : len(roi_labels)] = roi_labels
            inputs["input_points"] = torch.as_tensor(point_array, dtype=self.dtype, device=self.device)[None]
            inputs["input_labels"] = torch.as_tensor(label_array, device=self.device)[None]
        if boxes:
            box_array = self._to_frame(np.stack(boxes), embedding)
            inputs["input_boxes"] = torch.as_tensor(box_array, dtype=self.dtype, device=self.device)[None]
        outputs = self.model(**inputs)
        return outputs.pred_masks[0].float(), outputs.iou_scores[0].float()

    def to_original(self, low_res: torch.Tensor, embedding: ImageEmbedding, threshold: float) -> np.ndarray:
        """Low-resolution logits `(n, h, w)` -> bool masks `(n, H, W)` at the photo's size (the family's own
        post-processing: SAM crops its padding first)."""
        masks = [low_res[:, None].float().cpu()]
        if self.style == "sam":
            result = self.image_processor.post_process_masks(
                masks, [embedding.original_size], [embedding.prompt_frame], mask_threshold=threshold
            )
        else:
            result = self.image_processor.post_process_masks(
                masks, [embedding.original_size], mask_threshold=threshold
            )
        return result[0][:, 0].numpy().astype(bool)

    def unpadded_low_res(self, low_res: torch.Tensor, embedding: ImageEmbedding) -> torch.Tensor:
        """The part of low-resolution logits `(..., h, w)` that covers the photo (SAM pads the encoder input)."""
        crop_h = max(1, round(low_res.shape[-2] * embedding.prompt_frame[0] / embedding.input_size[0]))
        crop_w = max(1, round(low_res.shape[-1] * embedding.prompt_frame[1] / embedding.input_size[1]))
        return low_res[..., :crop_h, :crop_w]


def default_image_processor(model: Any) -> Any:
    """The family's image processor at the model's input size (for a model given without one)."""
    import transformers

    side = int(model.config.prompt_encoder_config.image_size)
    if SEGMENTER_FAMILIES[model.config.model_type] == "sam":
        return transformers.SamImageProcessor(size={"longest_edge": side}, pad_size={"height": side, "width": side})
    if model.config.model_type.startswith("sam3"):
        return transformers.Sam3ImageProcessor(size={"height": side, "width": side})
    return transformers.Sam2ImageProcessor(size={"height": side, "width": side})


def resolve_device_and_dtype(device: str | None, dtype: str) -> tuple[torch.device, torch.dtype]:
    """`device` None: CUDA when available, else CPU. `dtype` "auto": bfloat16 on a GPU that supports it, float16 on
    other GPUs, float32 on CPU; or a dtype name."""
    resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype == "auto":
        if resolved.type == "cuda":
            return resolved, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return resolved, torch.float32
    return resolved, getattr(torch, str(dtype).replace("torch.", ""))


class TextSegmenter:
    """SAM 3 (`Sam3Model` with its `Sam3Processor`: image processor + tokenizer): a text prompt (a concept, e.g.
    "food") -> one mask per instance found, scored and filtered by the processor's own post-processing. It takes no
    box or click prompts here (SAM 3's tracker does: load it as a `sam3_tracker` checkpoint)."""

    takes_text = True

    def __init__(self, model: Any, processor: Any = None, name: str | None = None):
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in TEXT_FAMILIES:
            raise ValueError(f"{name or type(model).__name__} is not a text-prompted segmenter (SAM 3).")
        if processor is None or getattr(processor, "tokenizer", None) is None:
            raise ValueError(
                f"{name or type(model).__name__} needs its `Sam3Processor` (image processor and tokenizer): pass it "
                "as `sam_image_processor`, or load the checkpoint by name."
            )
        self.model, self.processor, self.model_type = model, processor, model_type

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def segment_text(
        self, images: list[np.ndarray], texts: list[str], score_threshold: float, mask_threshold: float
    ) -> list[list[np.ndarray]]:
        """One forward pass for the images (each with its text): per image, the bool masks of the instances whose
        score passes `score_threshold`, at the photo's size."""
        inputs = self.processor(images=[Image.fromarray(image) for image in images], text=texts, return_tensors="pt")
        original_sizes = [tuple(int(v) for v in size) for size in inputs["original_sizes"]]
        dtype = next(self.model.parameters()).dtype
        model_inputs = {
            k: (v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor) and k != "original_sizes"
        }
        outputs = self.model(**model_inputs)
        results = self.processor.post_process_instance_segmentation(
            outputs, threshold=score_threshold, mask_threshold=mask_threshold, target_sizes=original_sizes
        )
        return [[np.asarray(mask.cpu(), dtype=bool) for mask in result["masks"]] for result in results]


def load_segmenter(name_or_path: str, revision: str | None = None, device: str | None = None, dtype: str = "auto"):
    """The segmenter of a checkpoint (Hub id or folder), loaded once per process per (checkpoint, revision, device,
    dtype) through `AutoModelForMaskGeneration`. A checkpoint of another kind is refused, naming it, before any
    weight is read."""
    import transformers

    resolved_device, resolved_dtype = resolve_device_and_dtype(device, dtype)
    key = (name_or_path, revision, str(resolved_device), str(resolved_dtype))
    with _SEGMENTER_CACHE_LOCK:
        if key not in _SEGMENTER_CACHE:
            config = transformers.AutoConfig.from_pretrained(name_or_path, revision=revision or "main")
            if config.model_type in TEXT_FAMILIES:
                model = getattr(transformers, TEXT_FAMILIES[config.model_type]).from_pretrained(
                    name_or_path, revision=revision or "main", dtype=resolved_dtype
                )
                model = model.to(resolved_device).eval().requires_grad_(False)
                processor = transformers.AutoProcessor.from_pretrained(name_or_path, revision=revision or "main")
                _SEGMENTER_CACHE[key] = TextSegmenter(model, processor, name=name_or_path)
                return _SEGMENTER_CACHE[key]
            if config.model_type not in SEGMENTER_FAMILIES:
                raise ValueError(
                    f"sam_model_name_or_path={name_or_path!r} is a {config.model_type!r} checkpoint, not a promptable "
                    f"segmenter. Supported families: {FAMILY_NAMES} (model types {sorted(SEGMENTER_FAMILIES)})."
                )
            logger.info(
                f"Loading the {config.model_type} segmenter {name_or_path} on {resolved_device} ({resolved_dtype})."
            )
            model = transformers.AutoModelForMaskGeneration.from_pretrained(
                name_or_path, revision=revision or "main", dtype=resolved_dtype
            )
            model = model.to(resolved_device).eval().requires_grad_(False)
            try:
                image_processor = transformers.AutoImageProcessor.from_pretrained(
                    name_or_path, revision=revision or "main"
                )
            except (OSError, ValueError):
                image_processor = default_image_processor(model)
                logger.warning(
                    f"{name_or_path} has no image processor: using {type(image_processor).__name__} at the model's "
                    f"input size ({model.config.prompt_encoder_config.image_size} px)."
                )
            _SEGMENTER_CACHE[key] = Segmenter(model, image_processor, name=name_or_path)
        return _SEGMENTER_CACHE[key]


# ----------------------------------------------------------------------------------------------- masks


@dataclass
class AutoRoiSettings:
    """The automatic ROI (no prompt): see `RveRNetImageProcessor`'s `auto_roi_*` settings."""

    points_per_side: int = 4
    min_area: float = 0.02
    max_area: float = 0.8
    center_weight: float = 0.2
    fallback_fraction: float = 0.5


def prompted_masks(
    segmenter: Segmenter, embedding: ImageEmbedding, request: dict, threshold: float
) -> list[np.ndarray]:
    """One bool mask per ROI of one image (`request` holds `points` and/or `boxes`). Candidates are ranked by
    predicted IoU and the first non-empty one wins; an empty result falls back to the box itself or a disk around the
    positive clicks, with a warning."""
    points, boxes = request.get("points"), request.get("boxes")
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


@dataclass
class AllObjectsSettings:
    """Every object of a photo (`all_objects=True`): see `RveRNetImageProcessor`'s `all_objects_*` settings. The
    filter defaults are those of SAM's automatic mask generator (predicted IoU 0.88, stability 0.95 with offset 1,
    NMS 0.7), not tuned here: no real segmenter weights are available to this project's test machines."""

    points_per_side: int = 16
    points_per_batch: int = 64
    pred_iou_threshold: float = 0.88
    stability_threshold: float = 0.95
    stability_offset: float = 1.0
    nms_threshold: float = 0.7
    min_area: float = 0.001
    max_area: float = 0.95
    max_regions: int = 32


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


def all_object_masks(
    segmenter: Segmenter,
    embedding: ImageEmbedding,
    threshold: float,
    settings: AllObjectsSettings,
    auto_roi: AutoRoiSettings | None = None,
) -> tuple[list[np.ndarray], torch.Tensor | None]:
    """Every object: the segmenter prompted with each point of a square grid (`points_per_batch` points per decoder
    call, one image embedding), each point's three candidates filtered by predicted IoU, stability (IoU of the mask
    thresholded at `threshold +- stability_offset`) and area, then non-maximum suppression on mask IoU, best
    predicted IoU first, at most `max_regions`. Returns the bool masks at the photo's size (possibly none) and the
    low-resolution logits of the automatic ROI chosen among the same candidates (`auto_roi`'s rule; None when none is
    usable), so that a photo where no object passes needs no second decoder pass."""
    grid = _grid(embedding.original_size, settings.points_per_side)
    auto_roi = auto_roi or AutoRoiSettings()
    kept_logits, kept_scores = [], []
    best_rank, best_logits = -math.inf, None
    for start in range(0, len(grid), settings.points_per_batch):
        low_res, scores = segmenter.decode(embedding, points=grid[start : start + settings.points_per_batch])
        low_res, scores = low_res.flatten(0, 1), scores.flatten()  # (k*3, h, w), (k*3,)
        ranking = _automatic_ranking(segmenter, embedding, low_res, scores, threshold, auto_roi)
        index = int(ranking.argmax())
        if float(ranking[index]) > best_rank:  # strictly better: ties go to the earlier grid point
            best_rank, best_logits = float(ranking[index]), low_res[index].clone()
        cropped = segmenter.unpadded_low_res(low_res, embedding)
        strict = (cropped > threshold + settings.stability_offset).flatten(1).sum(1)
        loose = (cropped > threshold - settings.stability_offset).flatten(1).sum(1)
        stability = strict / loose.clamp(min=1)
        area = (cropped > threshold).flatten(1).float().mean(1)
        keep = (scores >= settings.pred_iou_threshold) & (stability >= settings.stability_threshold)
        keep &= (area >= settings.min_area) & (area <= settings.max_area)
        kept_logits.append(low_res[keep])
        kept_scores.append(scores[keep])
    logits, scores = torch.cat(kept_logits), torch.cat(kept_scores)
    if logits.shape[0] == 0:
        return [], best_logits
    cropped = segmenter.unpadded_low_res(logits, embedding) > threshold
    chosen = _nms_by_mask_iou(cropped, scores, settings.nms_threshold, settings.max_regions)
    masks = segmenter.to_original(logits[chosen], embedding, threshold)
    return [mask for mask in masks if mask.any() and not mask.all()], best_logits


def segment_text(
    segmenter: "TextSegmenter",
    images: list[np.ndarray],
    requests: list[dict],
    batch_size: int,
    score_threshold: float,
    mask_threshold: float,
    fallback_fraction: float,
) -> list[list[np.ndarray]]:
    """Masks from a text prompt (`requests[i]["text"]`), `batch_size` images per forward pass; an image where no
    instance passes gets the central box, with a warning (the ROI is never empty)."""
    results: list[list[np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        chunk, chunk_requests = images[start : start + batch_size], requests[start : start + batch_size]
        found = segmenter.segment_text(chunk, [r["text"] for r in chunk_requests], score_threshold, mask_threshold)
        for image, request, masks in zip(chunk, chunk_requests, found):
            masks = [mask for mask in masks if mask.any() and not mask.all()]
            if not masks:
                logger.warning(
                    f"No instance of {request['text']!r} found in image {request.get('index', start)} (score "
                    f">= {score_threshold}); falling back to the central box."
                )
                masks = [center_mask(image.shape[:2], fallback_fraction)]
            results.append(masks)
    return results


def segment(
    segmenter: Segmenter,
    images: list[np.ndarray],
    requests: list[dict],
    batch_size: int,
    threshold: float,
    auto_roi: AutoRoiSettings,
    all_objects: AllObjectsSettings | None = None,
) -> list[list[np.ndarray]]:
    """Masks for images that need the segmenter. `requests[i]` holds `points`, `boxes`, `auto` or `all` (every
    object) for image i. An image where no object passes the filters gets its automatic ROI, with a warning.

    The image encoder runs once per image, `batch_size` images per forward pass; all prompts of an image share its
    embedding in one decoder call. Returns, per request, a list of bool masks at the original size.
    """
    results: list[list[np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        embeddings = segmenter.embed(images[start : start + batch_size])
        for offset, embedding in enumerate(embeddings):
            request = requests[start + offset]
            if request.get("all"):
                settings = all_objects or AllObjectsSettings()
                masks, automatic = all_object_masks(segmenter, embedding, threshold, settings, auto_roi)
                if not masks:  # the automatic ROI among the grid's own candidates: no second decoder pass
                    index = request.get("index", start + offset)
                    logger.warning(
                        f"No object of image {index} passed the every-object filters; using its automatic ROI."
                    )
                    masks = [_automatic_or_center(segmenter, embedding, automatic, threshold, auto_roi)]
                results.append(masks)
            elif request.get("auto"):
                results.append([automatic_mask(segmenter, embedding, threshold, auto_roi)])
            else:
                results.append(prompted_masks(segmenter, embedding, request, threshold))
    return results


__all__ = [
    "AllObjectsSettings",
    "AutoRoiSettings",
    "DEFAULT_SEGMENTER",
    "FAMILY_NAMES",
    "ImageEmbedding",
    "SEGMENTER_FAMILIES",
    "Segmenter",
    "TEXT_FAMILIES",
    "TextSegmenter",
    "load_segmenter",
    "segment",
    "segment_text",
]
