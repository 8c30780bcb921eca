# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Image processor for RveRNet: photos (+ an ROI mask, box, points, or nothing) -> ROI and context cut-outs.

The processor holds settings, not weights, and is about pixels: decoding, letterbox/resize, normalisation, cut-outs.
When a prompt (box/points) or nothing is given, the ROI mask comes from a promptable segmenter (SAM, SAM-HQ, SAM 2,
EdgeTAM, SAM 3 tracker: see `segmentation_rvernet.py`), loaded lazily on the first call that needs it, once per
process. This file and `segmentation_rvernet.py` are uploaded next to the weights and read by the Hub's remote-code
loader: they import only torch, numpy, PIL and transformers.

Pixel contract (per sample, at the output size, after letterbox/resize and per-tower normalisation `N_t`):

    roi_pixel_values     = where(mask, N_roi(image), fill_value)
    context_pixel_values = where(mask, fill_value, N_context(image))   # context_mode="complement" (the paper)
                         = N_context(image)                            # context_mode="full"

Letterbox padding lies outside the ROI, so it is `fill_value` in the ROI cut-out and the grey `pad_value` (normalised)
in the context cut-out.
"""

import copy
import io
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.utils import logging

from .segmentation_rvernet import (
    DEFAULT_SEGMENTER,
    TEXT_FAMILIES,
    AllObjectsSettings,
    AutoRoiSettings,
    Segmenter,
    TextSegmenter,
    center_mask,
    check_prompts_inside,
    load_segmenter,
    normalize_box_prompts,
    normalize_point_prompts,
    per_image,
    segment,
    segment_text,
    unwrap_single_image_prompts,
)


logger = logging.get_logger(__name__)

IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
RESIZE_MODES = ("letterbox", "resize")
CONTEXT_MODES = ("complement", "full")
AUTO_ROI_STRATEGIES = ("sam_grid", "center")
INPUT_DATA_FORMATS = ("channels_first", "channels_last")

TOKEN_TOWERS = ("roi", "context")


def _patch_sizes(value: Any) -> dict[str, int | None]:
    """`patch_size` in its saved form: `{"roi": p or None, "context": q or None}` (an int means both towers)."""
    if isinstance(value, dict):
        unknown = set(value) - set(TOKEN_TOWERS)
        if unknown:
            raise ValueError(f"`patch_size` keys must be {TOKEN_TOWERS}, got {sorted(value)}.")
        sizes = {tower: value.get(tower) for tower in TOKEN_TOWERS}
    else:
        sizes = dict.fromkeys(TOKEN_TOWERS, value)
    for tower, size in sizes.items():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"`patch_size` of the {tower} tower must be a positive integer or None, got {size!r}.")
    return sizes


# The processor's settings (constructor arguments, saved in preprocessor_config.json): every one can also be given to
# a single call, overriding the saved value for that call only.
_SETTING_TYPES = {
    "sam_model_name_or_path": str,
    "sam_revision": None,
    "sam_device": None,
    "sam_dtype": None,
    "sam_batch_size": int,
    "size": dict,
    "resize_mode": None,
    "pad_value": int,
    "do_normalize": None,
    "do_convert_rgb": None,
    "roi_image_mean": list,
    "roi_image_std": list,
    "context_image_mean": list,
    "context_image_std": list,
    "context_mode": None,
    "fill_value": float,
    "mask_threshold": float,
    "auto_roi": None,
    "auto_roi_points_per_side": int,
    "auto_roi_min_area": float,
    "auto_roi_max_area": float,
    "auto_roi_center_weight": float,
    "auto_roi_fallback_fraction": float,
    "all_objects_points_per_side": int,
    "all_objects_points_per_batch": int,
    "all_objects_pred_iou_threshold": float,
    "all_objects_stability_threshold": float,
    "all_objects_nms_threshold": float,
    "all_objects_min_area": float,
    "all_objects_max_area": float,
    "all_objects_max_regions": int,
    "text_score_threshold": float,
    "text_mask_threshold": float,
    "patch_size": _patch_sizes,
    "token_keep_threshold": float,
    "token_margin": int,
}
SETTINGS = tuple(_SETTING_TYPES)
_SETTING_DEFAULTS = {
    "size": {"height": 224, "width": 224},
    "roi_image_mean": IMAGENET_DEFAULT_MEAN,
    "roi_image_std": IMAGENET_DEFAULT_STD,
    "context_image_mean": IMAGENET_DEFAULT_MEAN,
    "context_image_std": IMAGENET_DEFAULT_STD,
}


# ----------------------------------------------------------------------------------------------- loading images


def _chw_float(array: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) uint8 array as a (3, H, W) float tensor (copying read-only arrays, which torch cannot wrap)."""
    array = np.ascontiguousarray(array) if array.flags.writeable else np.array(array)
    return torch.from_numpy(array).permute(2, 0, 1).float()


def _describe(index: int, source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"image {index} ({os.fspath(source)})"
    return f"image {index}"


def _pil_to_rgb(image: Image.Image, background: int, name: str = "the image") -> Image.Image:
    """Any PIL mode to RGB: alpha composited on a grey `background`; 16- and 32-bit integer modes read as 16-bit
    (0-65535) and float mode "F" as 0-1, each scaled to 8 bits (never clipped: values outside are refused)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 1.0 if image.mode == "F" else 65535.0
        _check_range(array, 0.0, peak, name, f"PIL mode {image.mode!r} is read as 0-{peak:g}")
        array = (array / peak * 255.0).round().astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (background, background, background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _check_range(array: np.ndarray, low: float, high: float, name: str, rule: str) -> None:
    """Refuse NaN/inf and values outside [low, high], naming the image and the rule that reads its values."""
    if array.size == 0:
        return
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has NaN or infinite values: fix or drop it (nothing is guessed for them).")
    found_low, found_high = float(array.min()), float(array.max())
    if found_low < low or found_high > high:
        raise ValueError(
            f"{name} has values in [{found_low:g}, {found_high:g}], but {rule}: rescale it (e.g. a 0-255 float image "
            "divided by 255) or pass it as uint8."
        )


def load_image(
    image: Any,
    index: int = 0,
    background: int = 125,
    input_data_format: str | None = None,
    do_convert_rgb: bool = True,
) -> np.ndarray:
    """Read one image (path, PIL, numpy or torch) into an RGB `uint8` array of shape (H, W, 3).

    EXIF orientation is applied; any PIL mode is converted (see `_pil_to_rgb`); numpy/torch inputs may be HW, HWC or
    CHW. Their value range comes from the dtype: bool, uint8 (0-255), uint16 (0-65535), other integers (0-255),
    floats (0-1); NaN, inf and values outside that range are refused, naming the image. `input_data_format` (`"channels_first"` or `"channels_last"`) says where the
    channels of a 3-D array are; without it they are inferred from the shape. With `do_convert_rgb=False` an image
    that is not already 3-channel RGB is refused instead of converted. Raises `ValueError` naming the image for: a
    file that is not an image or is truncated, an image over PIL's decompression-bomb limit, a zero-size image, an
    array of the wrong shape.
    """
    input_data_format = getattr(input_data_format, "value", input_data_format)  # a ChannelDimension
    if input_data_format is not None and input_data_format not in INPUT_DATA_FORMATS:
        raise ValueError(
            f"`input_data_format` must be one of {INPUT_DATA_FORMATS} or None, got {input_data_format!r}."
        )
    if isinstance(image, dict) and ("bytes" in image or "path" in image):  # a `datasets.Image(decode=False)` cell
        image = image.get("bytes") or image.get("path")
    name = _describe(index, image)
    if isinstance(image, (str, os.PathLike, bytes, io.IOBase)):
        source = io.BytesIO(image) if isinstance(image, bytes) else image
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(source) as opened:
                    opened.load()
                    image = ImageOps.exif_transpose(opened)
                    image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ValueError(
                f"{name} is larger than PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS} pixels): {error}. "
                "Raise `PIL.Image.MAX_IMAGE_PIXELS` if you trust this file."
            ) from None
        except FileNotFoundError:
            raise ValueError(f"{name} does not exist.") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"{name} is not a readable image file (not an image, or truncated): {error}") from None
    if isinstance(image, Image.Image):
        width, height = image.size
        if width == 0 or height == 0:
            raise ValueError(f"{name} has zero size ({width}x{height}).")
        if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
            raise ValueError(
                f"{name} has {width * height} pixels, over PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS})."
            )
        image = ImageOps.exif_transpose(image)
        if not do_convert_rgb and image.mode != "RGB":
            raise ValueError(
                f"{name} has PIL mode {image.mode!r}, not RGB, and `do_convert_rgb=False`: convert it, or leave "
                "`do_convert_rgb=True` (the default) to convert it."
            )
        return np.asarray(_pil_to_rgb(image, background, name))
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a path, a PIL image, a numpy array or a torch tensor, got {type(image)}.")
    array = image
    if array.ndim == 3 and input_data_format == "channels_first":
        array = np.moveaxis(array, 0, -1)
    elif (
        array.ndim == 3
        and input_data_format is None
        and array.shape[0] in (1, 3, 4)
        and array.shape[-1] not in (1, 3, 4)
    ):
        array = np.moveaxis(array, 0, -1)  # CHW -> HWC
    if not do_convert_rgb and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ValueError(
            f"{name} is not a 3-channel RGB array (shape {image.shape}) and `do_convert_rgb=False`: leave "
            "`do_convert_rgb=True` (the default) to convert grey and RGBA arrays."
        )
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"{name} must have shape (H, W), (H, W, C) or (C, H, W) with C in 1/3/4, got {image.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} has zero size ({array.shape[1]}x{array.shape[0]}).")
    # The value range comes from the dtype, never from the values: bool 0/1, uint8 0-255, uint16 0-65535, other
    # integers 0-255, floats 0-1 (transformers' convention for rescaled images). Anything else is refused, named.
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        _check_range(array, 0.0, 1.0, name, f"a float array ({array.dtype}) is read as 0-1")
        array = (array * 255.0).round().astype(np.uint8)
    elif array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        _check_range(array, 0, 255, name, f"an integer array ({array.dtype}) is read as 0-255")
        array = array.astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.shape[-1] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + background * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def load_mask(mask: Any, index: int, image_shape: tuple[int, int], allow_full: bool = False) -> np.ndarray:
    """Read a user-given ROI mask into a bool (H, W) array matching the image.

    Accepts bool, {0, 1} or {0, 255} arrays/tensors, PIL images (mode 1, L, P, RGB with equal channels) and paths.
    Raises `ValueError` naming the image for: a size that differs from the image's, non-binary values, an empty mask,
    or a mask covering the whole image (no context left), unless `allow_full`.
    """
    name = f"the ROI mask of image {index}"
    if isinstance(mask, dict) and ("bytes" in mask or "path" in mask):  # a `datasets.Image(decode=False)` cell
        mask = mask.get("bytes") or mask.get("path")
    if isinstance(mask, (str, os.PathLike, bytes)):
        try:
            with Image.open(io.BytesIO(mask) if isinstance(mask, bytes) else mask) as opened:
                opened.load()
                mask = opened.copy()
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{name} is not a readable image file: {error}") from None
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L") if mask.mode not in ("1", "L", "P", "I", "I;16") else mask)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1]):
        mask = mask.reshape(mask.shape[1:] if mask.shape[0] == 1 else mask.shape[:-1])
    if mask.ndim == 3 and mask.shape[-1] in (3, 4) and (mask[..., :3] == mask[..., :1]).all():
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {mask.shape}.")
    if tuple(mask.shape) != tuple(image_shape):
        raise ValueError(
            f"{name} has size {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is {image_shape[1]}x{image_shape[0]}."
        )
    if mask.dtype != np.bool_:
        values = np.unique(mask)
        if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            shown = values[:6].tolist()
            raise ValueError(f"{name} is not binary: expected values {{0, 1}} or {{0, 255}}, found {shown}...")
        mask = mask > 0
    if not mask.any():
        raise ValueError(f"{name} is empty (all zero): there is no ROI to classify.")
    if mask.all() and not allow_full:
        raise ValueError(f"{name} covers the whole image (all one): nothing is left for the context tower.")
    return mask


def mask_box(mask: np.ndarray) -> list[int]:
    """The extent `[x0, y0, x1, y1]` of a non-empty bool mask, in pixels (x1, y1 exclusive)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


# ----------------------------------------------------------------------------------------------- resize + normalise
# One resize and one normalisation serve every view: the two cut-outs, the paired layout and a single model's (the
# teacher's) full-image input.


def resize_to_canvas(
    image: torch.Tensor,
    mask: torch.Tensor | None,
    size: dict[str, int],
    resize_mode: str = "letterbox",
    pad_value: float = 125,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """image (3, h, w) float 0-255 and an optional mask (h, w) bool -> the same geometry at `size`.

    `"letterbox"` keeps the aspect ratio and pads with `pad_value`; `"resize"` stretches. Bilinear, antialiased. A mask
    keeps every pixel at least half covered, and a tiny ROI never vanishes when the image shrinks.
    """
    height, width = image.shape[-2:]
    out_h, out_w = size["height"], size["width"]
    if resize_mode == "resize":
        new_h, new_w, top, left = out_h, out_w, 0, 0
    else:
        scale = min(out_h / height, out_w / width)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    resized = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)[0]
    canvas = torch.full((3, out_h, out_w), float(pad_value), dtype=image.dtype, device=image.device)
    canvas[:, top : top + new_h, left : left + new_w] = resized.clamp(0, 255)
    if mask is None:
        return canvas, None
    coverage = F.interpolate(
        mask[None, None].float(), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
    )[0, 0]
    resized_mask = coverage >= 0.5
    if not resized_mask.any():  # a tiny ROI must not vanish when the image shrinks
        resized_mask = coverage >= coverage.max()
    canvas_mask = torch.zeros((out_h, out_w), dtype=torch.bool, device=image.device)
    canvas_mask[top : top + new_h, left : left + new_w] = resized_mask
    return canvas, canvas_mask


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float], do_normalize: bool = True):
    """image float 0-255 -> [0, 1], then `(x - mean) / std` per channel when `do_normalize`."""
    image = image / 255.0
    if not do_normalize:
        return image
    mean_t = torch.tensor(mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image - mean_t) / std_t


# ----------------------------------------------------------------------------------------------- processor


class RveRNetImageProcessor(BaseImageProcessor):
    r"""
    Turns photos into RveRNet's two inputs, `roi_pixel_values` and `context_pixel_values`.

    Per image, the ROI comes from one of: a mask (`roi_masks`), a box (`input_boxes`), one or more points
    (`input_points` + `input_labels`), or nothing (the automatic ROI). Several ROIs of one image give one sample each;
    `roi_image_index` maps samples back to images. Boxes and points are turned into masks by SAM, whose image
    embedding is computed once per image however many prompts it has, with images batched through SAM.

    Args:
        sam_model_name_or_path (`str`, *optional*, defaults to `"facebook/sam-vit-base"`):
            Promptable segmenter checkpoint (Hub id or folder) of any family that `AutoModelForMaskGeneration` loads:
            SAM ViT-B/L/H and SlimSAM (`facebook/sam-vit-base`, `nielsr/slimsam-50-uniform`), SAM-HQ, SAM 2 / 2.1
            (`facebook/sam2.1-hiera-tiny`), EdgeTAM, the SAM 3 tracker. Loaded lazily on the first call that needs it
            (never when masks are given), once per process; a checkpoint of another kind is refused, naming it.
        sam_revision (`str`, *optional*): Revision of the SAM checkpoint.
        sam_device (`str`, *optional*): Device for SAM; defaults to CUDA when available, else CPU.
        sam_dtype (`str`, *optional*, defaults to `"auto"`):
            `"auto"` (bfloat16 on a GPU that supports it, float16 on other GPUs, float32 on CPU), or a dtype name.
        sam_batch_size (`int`, *optional*, defaults to 4): Images per SAM image-encoder forward pass.
        size (`dict`, *optional*, defaults to `{"height": 224, "width": 224}`): Output size of both cut-outs.
        resize_mode (`str`, *optional*, defaults to `"letterbox"`):
            `"letterbox"` keeps the aspect ratio and pads with `pad_value` (the paper); `"resize"` stretches.
        pad_value (`int`, *optional*, defaults to 125): Grey level (0-255) of letterbox padding, as the paper.
        do_normalize (`bool`, *optional*, defaults to `True`): Normalise each cut-out with its tower's mean/std.
        roi_image_mean, roi_image_std (`list[float]`, *optional*, default ImageNet): Normalisation of the ROI tower.
        context_image_mean, context_image_std (`list[float]`, *optional*, default ImageNet): Normalisation of the
            context tower. `RveRNetImageProcessor.from_towers_pretrained` fills all four from the towers' processors.
        context_mode (`str`, *optional*, defaults to `"complement"`):
            `"complement"`: the context cut-out has the ROI blacked out (the paper); `"full"`: the untouched image.
        fill_value (`float`, *optional*, defaults to 0.0):
            The value written (after normalisation) where a cut-out hides pixels. 0.0 is each tower's mean colour.
        mask_threshold (`float`, *optional*, defaults to 0.0): Threshold on SAM's mask logits.
        auto_roi (`str`, *optional*, defaults to `"sam_grid"`):
            ROI when no prompt is given. `"sam_grid"`: SAM prompted with each point of an `auto_roi_points_per_side`
            square grid; among candidate masks whose area is within [`auto_roi_min_area`, `auto_roi_max_area`] of
            the image, the one with the highest `predicted IoU - auto_roi_center_weight * distance of its centroid
            from the image centre (as a fraction of the half-diagonal)` wins (ties: the earlier grid point).
            `"center"`: no SAM; the central box (see fallback). Fallback, when SAM yields no usable mask (none in
            the area range, or an empty mask for a prompt): for a box prompt the box itself, for point prompts a disk
            around the positive points, otherwise the central box covering `auto_roi_fallback_fraction` of each side;
            a warning is logged. The ROI is never empty.
        auto_roi_points_per_side (`int`, *optional*, defaults to 4)
        auto_roi_min_area (`float`, *optional*, defaults to 0.02)
        auto_roi_max_area (`float`, *optional*, defaults to 0.8)
        auto_roi_center_weight (`float`, *optional*, defaults to 0.2)
        auto_roi_fallback_fraction (`float`, *optional*, defaults to 0.5)
        all_objects_points_per_side (`int`, *optional*, defaults to 16):
            Every-object mode (`all_objects=True` in a call): the segmenter is prompted with each point of this square
            grid, `all_objects_points_per_batch` (64) points per decoder call and one image embedding per image. Each
            point's three candidates are kept when their predicted IoU >= `all_objects_pred_iou_threshold` (0.88),
            their stability (IoU of the mask thresholded at `mask_threshold` +- 1) >= `all_objects_stability_threshold`
            (0.95) and their area is within [`all_objects_min_area`, `all_objects_max_area`] (0.001, 0.95) of the
            photo; then non-maximum suppression on mask IoU (`all_objects_nms_threshold`, 0.7; overlapping objects keep
            their own masks), best predicted IoU first, at most `all_objects_max_regions` (32) per image. These are
            SAM's automatic-mask-generator defaults. An image where nothing passes gets its automatic ROI, with a
            warning.
        patch_size (`int` or `dict`, *optional*):
            The patch size of each ViT-family tower (`{"roi": 16, "context": 16}`; an int for both), as
            `model.token_patch_sizes` gives it. When set, the output also has `roi_token_mask` and
            `context_token_mask` `(N, (height // p) * (width // p))` bool, raster order: the patches each tower reads
            under `token_selection="mask"` (dense models accept and ignore them). A patch is read by the ROI tower
            when more than `token_keep_threshold` of its pixels are in the ROI, by the context tower when more than
            that fraction is outside it (with the default 0.0, any pixel: a boundary patch belongs to both towers;
            with `context_mode="full"` the context tower reads every patch). `size` must be a multiple of it.
        token_keep_threshold (`float`, *optional*, defaults to 0.0): See `patch_size`; in [0, 1).
        token_margin (`int`, *optional*, defaults to 0):
            Also keep, for each tower, the patches within this many patches of its region (a ring around it): the
            hidden patches next to the region, which carry its outline (a model trained dense saw them).

    Example:

    ```python
    >>> import numpy as np
    >>> from rvernet_hf import RveRNetImageProcessor
    >>> processor = RveRNetImageProcessor(size={"height": 32, "width": 32})
    >>> image = np.zeros((40, 60, 3), dtype=np.uint8)
    >>> mask = np.zeros((40, 60), dtype=bool); mask[10:20, 10:30] = True
    >>> batch = processor(image, roi_masks=mask)
    >>> batch["roi_pixel_values"].shape, batch["context_pixel_values"].shape
    (torch.Size([1, 3, 32, 32]), torch.Size([1, 3, 32, 32]))
    ```
    """

    model_input_names = ["roi_pixel_values", "context_pixel_values", "roi_token_mask", "context_token_mask"]

    def __init__(
        self,
        sam_model_name_or_path: str = DEFAULT_SEGMENTER,
        sam_revision: str | None = None,
        sam_device: str | None = None,
        sam_dtype: str = "auto",
        sam_batch_size: int = 4,
        size: dict[str, int] | None = None,
        resize_mode: str = "letterbox",
        pad_value: int = 125,
        do_normalize: bool = True,
        roi_image_mean: Sequence[float] | None = None,
        roi_image_std: Sequence[float] | None = None,
        context_image_mean: Sequence[float] | None = None,
        context_image_std: Sequence[float] | None = None,
        context_mode: str = "complement",
        fill_value: float = 0.0,
        mask_threshold: float = 0.0,
        auto_roi: str = "sam_grid",
        auto_roi_points_per_side: int = 4,
        auto_roi_min_area: float = 0.02,
        auto_roi_max_area: float = 0.8,
        auto_roi_center_weight: float = 0.2,
        auto_roi_fallback_fraction: float = 0.5,
        all_objects_points_per_side: int = 16,
        all_objects_points_per_batch: int = 64,
        all_objects_pred_iou_threshold: float = 0.88,
        all_objects_stability_threshold: float = 0.95,
        all_objects_nms_threshold: float = 0.7,
        all_objects_min_area: float = 0.001,
        all_objects_max_area: float = 0.95,
        all_objects_max_regions: int = 32,
        text_score_threshold: float = 0.3,
        text_mask_threshold: float = 0.5,
        patch_size: int | dict[str, int | None] | None = None,
        token_keep_threshold: float = 0.0,
        token_margin: int = 0,
        do_convert_rgb: bool = True,
        sam_model: Any = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._apply_settings(
            sam_model_name_or_path=sam_model_name_or_path,
            sam_revision=sam_revision,
            sam_device=sam_device,
            sam_dtype=sam_dtype,
            sam_batch_size=sam_batch_size,
            size=size,
            resize_mode=resize_mode,
            pad_value=pad_value,
            do_normalize=do_normalize,
            do_convert_rgb=do_convert_rgb,
            roi_image_mean=roi_image_mean,
            roi_image_std=roi_image_std,
            context_image_mean=context_image_mean,
            context_image_std=context_image_std,
            context_mode=context_mode,
            fill_value=fill_value,
            mask_threshold=mask_threshold,
            auto_roi=auto_roi,
            auto_roi_points_per_side=auto_roi_points_per_side,
            auto_roi_min_area=auto_roi_min_area,
            auto_roi_max_area=auto_roi_max_area,
            auto_roi_center_weight=auto_roi_center_weight,
            auto_roi_fallback_fraction=auto_roi_fallback_fraction,
            all_objects_points_per_side=all_objects_points_per_side,
            all_objects_points_per_batch=all_objects_points_per_batch,
            all_objects_pred_iou_threshold=all_objects_pred_iou_threshold,
            all_objects_stability_threshold=all_objects_stability_threshold,
            all_objects_nms_threshold=all_objects_nms_threshold,
            all_objects_min_area=all_objects_min_area,
            all_objects_max_area=all_objects_max_area,
            all_objects_max_regions=all_objects_max_regions,
            text_score_threshold=text_score_threshold,
            text_mask_threshold=text_mask_threshold,
            patch_size=patch_size,
            token_keep_threshold=token_keep_threshold,
            token_margin=token_margin,
        )
        self._sam = None  # a SAM the caller gave (set_sam_model), never serialised
        if sam_model is not None:
            self.set_sam_model(sam_model)
        self._validate_settings()

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs: Any):
        """As in transformers; settings given as keyword arguments (`from_pretrained(folder, patch_size=16)`) go
        through the constructor, so they are converted and validated like the saved ones (transformers would set
        them on the instance unchecked)."""
        image_processor_dict = dict(image_processor_dict)
        for name in [name for name in kwargs if name in SETTINGS]:
            image_processor_dict[name] = kwargs.pop(name)
        return super().from_dict(image_processor_dict, **kwargs)

    def _apply_settings(self, **settings: Any) -> None:
        """Set settings (constructor arguments), each in its canonical type; `None` means the default where the
        constructor has one (size, means, stds)."""
        for name, value in settings.items():
            if name in _SETTING_DEFAULTS and value is None:
                value = _SETTING_DEFAULTS[name]
            convert = _SETTING_TYPES.get(name)
            setattr(self, name, convert(value) if convert is not None and value is not None else value)

    def _for_call(self, overrides: dict[str, Any]) -> "RveRNetImageProcessor":
        """This processor with `overrides` applied for one call (validated as in the constructor); `self` untouched."""
        unknown = sorted(set(overrides) - set(SETTINGS) - {"image_mean", "image_std"})
        if unknown:
            raise TypeError(
                f"Unexpected arguments for RveRNetImageProcessor: {unknown}. Per call it takes its settings "
                f"({', '.join(SETTINGS)}), `image_mean`/`image_std` (both towers), `input_data_format`, `device`, "
                "`sam_model`, `return_tensors` and `return_roi_masks`."
            )
        if not overrides:
            return self
        overrides = dict(overrides)
        for shorthand in ("image_mean", "image_std"):
            if shorthand in overrides:
                value = overrides.pop(shorthand)
                for tower in ("roi", "context"):
                    overrides.setdefault(f"{tower}_{shorthand}", value)
        call = copy.copy(self)
        call._apply_settings(**overrides)
        call._validate_settings()
        return call

    def _validate_settings(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"`resize_mode` must be one of {RESIZE_MODES}, got {self.resize_mode!r}.")
        if self.context_mode not in CONTEXT_MODES:
            raise ValueError(f"`context_mode` must be one of {CONTEXT_MODES}, got {self.context_mode!r}.")
        if self.auto_roi not in AUTO_ROI_STRATEGIES:
            raise ValueError(f"`auto_roi` must be one of {AUTO_ROI_STRATEGIES}, got {self.auto_roi!r}.")
        if set(self.size) != {"height", "width"} or min(self.size.values()) < 1:
            raise ValueError(f"`size` must be {{'height': H, 'width': W}} with positive H, W, got {self.size}.")
        for name in ("roi_image_mean", "roi_image_std", "context_image_mean", "context_image_std"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"`{name}` must have 3 values (RGB), got {getattr(self, name)}.")
        if not 0.0 <= self.auto_roi_min_area < self.auto_roi_max_area <= 1.0:
            raise ValueError("`auto_roi_min_area` and `auto_roi_max_area` must satisfy 0 <= min < max <= 1.")
        if self.sam_batch_size < 1:
            raise ValueError(f"`sam_batch_size` must be >= 1, got {self.sam_batch_size}.")
        counts = (
            "auto_roi_points_per_side",
            "all_objects_points_per_side",
            "all_objects_points_per_batch",
            "all_objects_max_regions",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be >= 1, got {getattr(self, name)} (a grid of 0 points finds nothing)."
                )
        if not 0.0 <= self.all_objects_min_area < self.all_objects_max_area <= 1.0:
            raise ValueError("`all_objects_min_area` and `all_objects_max_area` must satisfy 0 <= min < max <= 1.")
        for name in ("do_normalize", "do_convert_rgb"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        if self.token_margin < 0:
            raise ValueError(f"`token_margin` must be >= 0 patches, got {self.token_margin}.")
        if not 0.0 <= self.token_keep_threshold < 1.0:
            raise ValueError(f"`token_keep_threshold` must be in [0, 1), got {self.token_keep_threshold}.")
        for tower, patch in (self.patch_size or {}).items():
            if patch is not None and (self.size["height"] % patch or self.size["width"] % patch):
                raise ValueError(
                    f"`size` {self.size} is not a multiple of the {tower} tower's `patch_size` {patch}: its token "
                    "grid would not cover the cut-out."
                )
        if any(value == 0 for value in (*self.roi_image_std, *self.context_image_std)):
            raise ValueError("`roi_image_std` and `context_image_std` must not contain 0 (it divides).")

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        return {key: value for key, value in output.items() if not key.startswith("_")}

    # ------------------------------------------------------------------------------------------- towers

    @classmethod
    def from_towers_pretrained(
        cls, roi_model_name_or_path: str, context_model_name_or_path: str, revision: str | None = None, **kwargs
    ) -> "RveRNetImageProcessor":
        """A processor whose per-tower normalisation (and, unless given, output size) come from each tower's own
        image processor (Hub id or folder, at `revision`), as `RveRNetForImageClassification.from_towers_pretrained`
        pairs them."""
        from transformers import AutoImageProcessor

        settings = {}
        for prefix, path in (("roi", roi_model_name_or_path), ("context", context_model_name_or_path)):
            try:
                tower_processor = AutoImageProcessor.from_pretrained(path, revision=revision)
            except (OSError, ValueError) as error:
                logger.warning(f"No image processor for the {prefix} tower ({path}): ImageNet defaults ({error}).")
                continue
            if getattr(tower_processor, "image_mean", None) is not None:
                settings[f"{prefix}_image_mean"] = list(tower_processor.image_mean)
                settings[f"{prefix}_image_std"] = list(tower_processor.image_std)
            crop = getattr(tower_processor, "crop_size", None) or getattr(tower_processor, "size", None)
            crop = dict(crop) if crop is not None else {}
            if prefix == "roi" and "height" in crop and "width" in crop:
                settings["size"] = {"height": int(crop["height"]), "width": int(crop["width"])}
            elif prefix == "roi" and crop.get("shortest_edge"):
                settings["size"] = {"height": int(crop["shortest_edge"]), "width": int(crop["shortest_edge"])}
        settings.update(kwargs)
        return cls(**settings)

    # ------------------------------------------------------------------------------------------- segmenter

    def set_sam_model(self, sam_model: Any, sam_image_processor: Any = None) -> None:
        """Use an already-built promptable segmenter (any family of `segmentation_rvernet.SEGMENTER_FAMILIES`, for
        example a tiny random one in tests) instead of loading `sam_model_name_or_path`; refused if it is not one."""
        model_type = getattr(getattr(sam_model, "config", None), "model_type", None)
        if model_type in TEXT_FAMILIES:  # SAM 3: `sam_image_processor` is its Sam3Processor (with the tokenizer)
            self._sam = TextSegmenter(sam_model, sam_image_processor)
        else:
            self._sam = Segmenter(sam_model, sam_image_processor)

    def get_segmenter(self) -> Segmenter | TextSegmenter:
        """The segmenter: the one given with `sam_model`, else `sam_model_name_or_path` loaded on first use (on
        `sam_device`, in `sam_dtype`) through `AutoModelForMaskGeneration` and shared across the process."""
        if self._sam is not None:
            return self._sam
        return load_segmenter(self.sam_model_name_or_path, self.sam_revision, self.sam_device, self.sam_dtype)

    # ------------------------------------------------------------------------------------------- cut-outs

    def _resize_to_canvas(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return resize_to_canvas(image, mask, self.size, self.resize_mode, self.pad_value)

    def _normalize(self, image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
        return normalize(image, mean, std, self.do_normalize)

    def make_cutouts(
        self, image: np.ndarray, mask: np.ndarray, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One RGB uint8 (H, W, 3) image and its bool (H, W) mask -> (roi, context, mask at the output size),
        computed on `device` (default CPU)."""
        tensor = _chw_float(image).to(device)
        canvas, canvas_mask = self._resize_to_canvas(tensor, torch.from_numpy(np.array(mask, dtype=bool)).to(device))
        fill = torch.tensor(self.fill_value, dtype=canvas.dtype, device=canvas.device)
        roi = torch.where(canvas_mask, self._normalize(canvas, self.roi_image_mean, self.roi_image_std), fill)
        context = self._normalize(canvas, self.context_image_mean, self.context_image_std)
        if self.context_mode == "complement":
            context = torch.where(canvas_mask, fill, context)
        return roi, context, canvas_mask

    def token_masks(self, canvas_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The patches each tower reads (see `patch_size`), from the ROI mask at the output size (`make_cutouts`'
        third result): `{"roi_token_mask": (num_patches,) bool, "context_token_mask": ...}` for the towers with a
        patch size, empty when `patch_size` is not set."""
        masks = {}
        for tower, patch in (self.patch_size or {}).items():
            if patch is None:
                continue
            inside = F.avg_pool2d(canvas_mask[None, None].float(), patch)[0, 0].flatten()  # ROI share of each patch
            if tower == "roi":
                keep = inside > self.token_keep_threshold
            elif self.context_mode == "complement":
                keep = (1.0 - inside) > self.token_keep_threshold
            else:  # the context tower sees the whole image
                keep = torch.ones_like(inside, dtype=torch.bool)
            if self.token_margin:  # a ring of `token_margin` patches around the region
                grid = keep.reshape(1, 1, canvas_mask.shape[0] // patch, canvas_mask.shape[1] // patch).float()
                size = 2 * self.token_margin + 1
                keep = F.max_pool2d(grid, size, stride=1, padding=self.token_margin).flatten() > 0
            masks[f"{tower}_token_mask"] = keep
        return masks

    def preprocess_pairs(
        self,
        roi_images: Any,
        context_images: Any,
        return_tensors: str | None = "pt",
        input_data_format: str | None = None,
        **settings: Any,
    ) -> BatchFeature:
        """Already-cut pairs (the official code's `roi/` + `extra-roi/` layout) -> the two model inputs.

        Each image is letterboxed/resized and normalised for its tower; nothing is masked again. Settings may be
        overridden for this call, as in `preprocess`. There is no ROI mask here, so no token masks are made: a model
        with `token_selection="mask"` refuses these inputs (use masks, or `token_selection="dense"`).
        """
        if settings:
            return self._for_call(settings).preprocess_pairs(
                roi_images, context_images, return_tensors, input_data_format
            )
        if not isinstance(roi_images, (list, tuple)):
            roi_images, context_images = [roi_images], [context_images]
        if len(roi_images) != len(context_images):
            raise ValueError(f"{len(roi_images)} ROI images but {len(context_images)} context images: they pair 1:1.")
        rois, contexts = [], []
        for index, (roi_image, context_image) in enumerate(zip(roi_images, context_images)):
            for source, mean, std, out in (
                (roi_image, self.roi_image_mean, self.roi_image_std, rois),
                (context_image, self.context_image_mean, self.context_image_std, contexts),
            ):
                array = load_image(source, index, self.pad_value, input_data_format, self.do_convert_rgb)
                tensor = _chw_float(array)
                full = torch.ones(array.shape[:2], dtype=torch.bool)
                canvas, _ = self._resize_to_canvas(tensor, full)
                out.append(self._normalize(canvas, mean, std))
        data = {"roi_pixel_values": torch.stack(rois), "context_pixel_values": torch.stack(contexts)}
        return BatchFeature(data=data, tensor_type=return_tensors)

    # ------------------------------------------------------------------------------------------- main entry

    def compute_roi_masks(
        self,
        images: Any,
        roi_masks: Any = None,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        input_data_format: str | None = None,
        all_objects: bool = False,
        text: str | list[str] | None = None,
        **settings: Any,
    ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
        """Read the images and find each one's ROI masks (given, from SAM prompts, or automatic); no cut-outs.

        Everything is checked before SAM runs. Returns the RGB uint8 arrays and, per image, its list of bool masks
        at the original size. Arguments as in `preprocess`.
        """
        if settings:
            return self._for_call(settings).compute_roi_masks(
                images, roi_masks, input_points, input_labels, input_boxes, input_data_format, all_objects, text
            )
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
        batched = isinstance(images, (list, tuple))
        image_list = list(images) if batched else [images]
        if not image_list:
            raise ValueError("`images` is empty.")
        count = len(image_list)
        if not batched:  # SAM's batch nesting for one image: drop its image level
            input_points, input_labels, input_boxes = unwrap_single_image_prompts(
                input_points, input_labels, input_boxes
            )
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

        # 1. Read and check everything before any heavy work.
        arrays, requests = [], []
        for index, image in enumerate(image_list):
            array = load_image(image, index, self.pad_value, input_data_format, self.do_convert_rgb)
            height, width = array.shape[:2]
            if height * width < 2:
                raise ValueError(
                    f"{_describe(index, image)} is {width}x{height}: too small for an ROI and a context (RveRNet "
                    "needs both)."
                )
            request: dict[str, Any] = {}
            if masks_in[index] is not None:
                if points_in[index] is not None or boxes_in[index] is not None:
                    raise ValueError(f"image {index} has both a mask and a box/point prompt: give one of them.")
                given = masks_in[index]
                many = isinstance(given, (list, tuple))  # a list of masks: several ROIs of this image
                request["masks"] = [load_mask(m, index, (height, width)) for m in (given if many else [given])]
            else:
                if points_in[index] is not None:
                    request["points"] = normalize_point_prompts(points_in[index], labels_in[index], index)
                elif labels_in[index] is not None:
                    raise ValueError(f"image {index} has input_labels but no input_points.")
                if boxes_in[index] is not None:
                    request["boxes"] = normalize_box_prompts(boxes_in[index], index)
                check_prompts_inside(index, height, width, request.get("points", ()), request.get("boxes", ()))
                if "points" in request and "boxes" in request and len(request["points"]) != len(request["boxes"]):
                    raise ValueError(
                        f"image {index} has {len(request['boxes'])} boxes and {len(request['points'])} point groups: "
                        "given together, each box pairs with one point group."
                    )
                if texts_in[index] is not None:
                    request["text"] = texts_in[index]
                if not request:
                    request["all" if all_objects else "auto"] = True
            request["index"] = index
            arrays.append(array)
            requests.append(request)

        if any(request.get("auto") for request in requests):
            # What the plain `pipeline("image-classification")` does with a photo: say so once, it is one label.
            logger.warning_once(
                "An image without a mask or prompt gets ONE automatic ROI (the segmenter's most salient object, "
                f"auto_roi={self.auto_roi!r}), so it yields one label; pass `all_objects=True` to label every object, "
                "or a box/points/mask to choose the object."
            )

        # 2. Masks: given, or from SAM (one image-encoder pass per image), or the center box without SAM.
        masks_per_image: list[list[np.ndarray] | None] = [r.get("masks") for r in requests]
        for index, request in enumerate(requests):
            if request.get("auto") and self.auto_roi == "center":
                masks_per_image[index] = [center_mask(arrays[index].shape[:2], self.auto_roi_fallback_fraction)]
        need_sam = [i for i, m in enumerate(masks_per_image) if m is None]
        if need_sam:
            segmenter = self.get_segmenter()
            takes_text = isinstance(segmenter, TextSegmenter)
            if text is not None and not takes_text:
                raise ValueError(
                    f"`text` needs a text-prompted segmenter (SAM 3, model_type 'sam3'), but the segmenter "
                    f"({self.sam_model_name_or_path if self._sam is None else type(segmenter.model).__name__}) is a "
                    f"{segmenter.model_type!r} model, which takes boxes and clicks. Set `sam_model_name_or_path` to a "
                    "SAM 3 checkpoint (e.g. facebook/sam3)."
                )
            if text is None and takes_text:
                raise ValueError(
                    "The segmenter is SAM 3 (text prompts): give `text=` (a concept such as 'food'), or use a "
                    "box/click segmenter (SAM, SAM 2, or SAM 3's tracker checkpoint) for boxes, clicks and automatic ROIs."
                )
        if need_sam and text is not None:
            text_results = segment_text(
                segmenter,
                [arrays[i] for i in need_sam],
                [requests[i] for i in need_sam],
                batch_size=self.sam_batch_size,
                score_threshold=self.text_score_threshold,
                mask_threshold=self.text_mask_threshold,
                fallback_fraction=self.auto_roi_fallback_fraction,
            )
            for index, masks in zip(need_sam, text_results):
                masks_per_image[index] = masks
            need_sam = []
        if need_sam:
            auto_roi = AutoRoiSettings(
                points_per_side=self.auto_roi_points_per_side,
                min_area=self.auto_roi_min_area,
                max_area=self.auto_roi_max_area,
                center_weight=self.auto_roi_center_weight,
                fallback_fraction=self.auto_roi_fallback_fraction,
            )
            sam_results = segment(
                segmenter,
                [arrays[i] for i in need_sam],
                [requests[i] for i in need_sam],
                batch_size=self.sam_batch_size,
                threshold=self.mask_threshold,
                auto_roi=auto_roi,
                all_objects=AllObjectsSettings(
                    points_per_side=self.all_objects_points_per_side,
                    points_per_batch=self.all_objects_points_per_batch,
                    pred_iou_threshold=self.all_objects_pred_iou_threshold,
                    stability_threshold=self.all_objects_stability_threshold,
                    nms_threshold=self.all_objects_nms_threshold,
                    min_area=self.all_objects_min_area,
                    max_area=self.all_objects_max_area,
                    max_regions=self.all_objects_max_regions,
                ),
            )
            for index, masks in zip(need_sam, sam_results):
                masks_per_image[index] = masks

        # One rule for every ROI source (given, prompted, automatic, fallback): an ROI must leave a context.
        for index, masks in enumerate(masks_per_image):
            for k, mask in enumerate(masks):
                if mask.all():
                    height, width = mask.shape
                    raise ValueError(
                        f"the ROI {k} of image {index} ({width}x{height}) covers the whole image: nothing is left for "
                        "the context tower. Give a smaller box or click, or a mask of the object."
                    )
        return arrays, masks_per_image

    def preprocess(
        self,
        images: Any,
        roi_masks: Any = None,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        return_tensors: str | None = "pt",
        return_roi_masks: bool = False,
        sam_model: Any = None,
        input_data_format: str | None = None,
        device: str | torch.device | None = None,
        all_objects: bool = False,
        text: str | list[str] | None = None,
        **settings: Any,
    ) -> BatchFeature:
        r"""
        Args:
            images (`PIL.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them):
                The photos. Any PIL mode; EXIF orientation is applied.
            roi_masks (*optional*): Per image: a mask (bool, {0,1} or {0,255} array/tensor, PIL image or path), a list
                of masks (several ROIs), or None.
            input_points (*optional*): Per image: `[x, y]`, `[[x, y], ...]` (one ROI from several clicks) or
                `[[[x, y], ...], ...]` (several ROIs), or None. Pixel coordinates of the original image.
            input_labels (*optional*): Per image, the points' labels (1 foreground, 0 background), same nesting.
            input_boxes (*optional*): Per image: `[x0, y0, x1, y1]` or a list of boxes (several ROIs), or None.
                Given together with points, the i-th box and the i-th point group make one ROI.
            return_tensors (`str`, *optional*, defaults to `"pt"`): As in every transformers processor.
            return_roi_masks (`bool`, *optional*, defaults to `False`):
                Also return `roi_masks`: a list with the bool mask (original image size) used for each sample.
            sam_model (*optional*): Use this promptable segmenter (any supported family) for this call instead of
                loading `sam_model_name_or_path`.
            all_objects (`bool`, *optional*, defaults to `False`):
                Every object of each photo becomes a sample (see the `all_objects_*` settings), each with its own mask
                (overlapping objects keep theirs) and the rest of the photo as its context; the output then also has
                `roi_boxes` (N, 4), each mask's extent `[x0, y0, x1, y1]` in pixels (x1, y1 exclusive). Cannot be
                combined with masks or prompts.
            text (`str` or `list[str]`, *optional*):
                A concept ("food", "sauce"), for all images or one per image: every instance SAM 3 finds (score >=
                `text_score_threshold`, mask probability >= `text_mask_threshold`: SAM 3's defaults 0.3 and 0.5)
                becomes a sample. Needs a SAM 3 segmenter (`model_type` "sam3"); any other family refuses it, and SAM
                3 refuses boxes and clicks (use its tracker checkpoint for those). An image where nothing is found
                gets the central box, with a warning.
            input_data_format (`str` or `ChannelDimension`, *optional*):
                `"channels_first"` (C, H, W) or `"channels_last"` (H, W, C) for numpy/torch images; inferred from the
                shape when not given.
            device (`str` or `torch.device`, *optional*):
                Where the cut-outs are computed and returned (e.g. `"cuda"`). SAM runs there too unless
                `sam_device` is set.
            **settings:
                Any setting of the constructor (`size`, `do_normalize`, `roi_image_mean`, `context_mode`,
                `sam_batch_size`, ...), or `image_mean` / `image_std` for both towers at once, overrides the saved
                value for this call only (validated as in the constructor; the processor itself is not changed).

        Prompt nesting: for one image, the per-image forms above, or SAM's batch nesting as `SamProcessor` takes it
        (`input_points=[[[[x, y]], [[x2, y2]]]]`: image, object, point, xy; `input_boxes=[[[x0, y0, x1, y1], ...]]`:
        image, box, 4; `input_labels=[[[1], [1]]]`). For a list of images, one entry per image in the per-image forms
        (which is SAM's batch nesting).

        Returns:
            [`BatchFeature`] with `roi_pixel_values` and `context_pixel_values` (N, 3, H, W), `roi_image_index` (N,)
            (which input image each sample comes from), `roi_token_mask` / `context_token_mask` when `patch_size` is
            set and, on request, `roi_masks`.
        """
        if device is not None and not settings.get("sam_device", self.sam_device):
            settings["sam_device"] = str(device)
        if settings or sam_model is not None:  # this call's settings, on a copy: `self` is never changed
            call = copy.copy(self._for_call(settings))
            if sam_model is not None:
                call.set_sam_model(sam_model)
            return call.preprocess(
                images,
                roi_masks,
                input_points,
                input_labels,
                input_boxes,
                return_tensors,
                return_roi_masks,
                input_data_format=input_data_format,
                device=device,
                all_objects=all_objects,
                text=text,
            )
        arrays, masks_per_image = self.compute_roi_masks(
            images,
            roi_masks=roi_masks,
            input_points=input_points,
            input_labels=input_labels,
            input_boxes=input_boxes,
            input_data_format=input_data_format,
            all_objects=all_objects,
            text=text,
        )

        # 3. Cut-outs (and, with `patch_size`, the patches each tower reads).
        rois, contexts, image_index, used_masks, token_masks = [], [], [], [], []
        for index, (array, masks) in enumerate(zip(arrays, masks_per_image)):
            for mask in masks:
                roi, context, canvas_mask = self.make_cutouts(array, mask, device)
                rois.append(roi)
                contexts.append(context)
                image_index.append(index)
                used_masks.append(mask)
                token_masks.append(self.token_masks(canvas_mask))
        data = {
            "roi_pixel_values": torch.stack(rois),
            "context_pixel_values": torch.stack(contexts),
            "roi_image_index": torch.tensor(image_index, dtype=torch.long, device=device),
        }
        for name in token_masks[0]:
            data[name] = torch.stack([sample[name] for sample in token_masks])
        if all_objects:
            data["roi_boxes"] = torch.tensor([mask_box(mask) for mask in used_masks], dtype=torch.long, device=device)
        if return_tensors is None:
            data = {k: v.cpu().numpy() for k, v in data.items()}
            batch = BatchFeature(data=data)
        else:
            batch = BatchFeature(data=data, tensor_type=return_tensors)
        if return_roi_masks:
            batch["roi_masks"] = used_masks
        return batch

    def __call__(self, images: Any, *args, **kwargs) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)


__all__ = ["RveRNetImageProcessor", "load_image", "load_mask", "normalize", "resize_to_canvas"]
