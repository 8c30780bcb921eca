# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""RveRNet's pixel operations, as transformers' `image_transforms` holds its own: resize to the output canvas, the
normalisation, and the two cut-outs of a photo and its ROI mask. One resize and one normalisation serve every view
(the two cut-outs, the official code's paired layout, and a single model's or the teacher's full-image input); both
are torchvision's functional ops, as transformers' torchvision backend runs them.

The functions read their settings by name from a mapping (`size`, `resize_mode`, `pad_value`, `do_normalize`, the
per-tower means and stds, `context_mode`, `fill_value`, `cutout_style`, and for the token grid `patch_size`,
`token_keep_threshold`, `token_margin`): the image processor's settings of one call. Pixel contract, per sample, at
the output size after letterbox/resize and per-tower normalisation `N_t`:

    roi_pixel_values     = where(mask, N_roi(image), fill_value)
    context_pixel_values = where(mask, fill_value, N_context(image))   # context_mode="complement" (the paper)
                         = N_context(image)                            # context_mode="full"

Letterbox padding lies outside the ROI, so it is `fill_value` in the ROI cut-out and the grey `pad_value` (normalised)
in the context cut-out. Uploaded next to the weights with the image processor (remote code): imports only torch,
torchvision, numpy and PIL.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as tvF
from transformers.image_utils import PILImageResampling

from .image_utils_rvernet import load_image, mask_box, to_chw_uint8
from .token_grid_rvernet import token_keep_masks


# The resampling filters a processor may name (transformers' `resample`, PIL's numbering).
RESAMPLE_FILTERS = {
    int(PILImageResampling.BILINEAR): tvF.InterpolationMode.BILINEAR,
    int(PILImageResampling.BICUBIC): tvF.InterpolationMode.BICUBIC,
}


def canvas_geometry(height: int, width: int, size: dict[str, int], resize_mode: str) -> tuple[int, int, int, int]:
    """(new height, new width, top, left) of a photo of `height` x `width` on the output canvas `size`.

    `"letterbox"`: the aspect ratio kept, the sides rounded, centred (the left/top pad takes the smaller half);
    `"letterbox_official"`: the official RveRNet code's `ResizeAndPad`: the sides floored and the left/top pad taking
    the odd pixel; `"resize"`: stretched."""
    out_h, out_w = size["height"], size["width"]
    if resize_mode == "resize":
        return out_h, out_w, 0, 0
    scale = min(out_h / height, out_w / width)
    if resize_mode == "letterbox_official":  # `math.floor(w * r)`, then `int(pad + 0.5)` on the left/top
        new_h, new_w = max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
        return new_h, new_w, math.ceil((out_h - new_h) / 2), math.ceil((out_w - new_w) / 2)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return new_h, new_w, (out_h - new_h) // 2, (out_w - new_w) // 2


def resize_to_canvas(
    image: torch.Tensor,
    mask: torch.Tensor | None,
    size: dict[str, int],
    resize_mode: str = "letterbox",
    pad_value: float = 125,
    resample: int = PILImageResampling.BILINEAR,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """image (3, h, w) uint8 or float 0-255 and an optional mask (h, w) bool -> the same geometry at `size` (the
    canvas in the image's dtype: `normalize` converts a uint8 one).

    The geometry is `canvas_geometry`'s; letterbox padding is `pad_value`. The photo is resampled with `resample`
    (bilinear, or bicubic as PIL's default), antialiased (`torchvision`'s resize). A mask keeps every pixel at least
    half covered, and a tiny ROI never vanishes when the image shrinks. A uint8 image on the CPU is resized and
    letterboxed in uint8 (torch's fixed-point antialiased kernel, 3-5x faster than in float): every pixel within one
    grey level of the float resize (rounding), and of PIL's own resize; the mask is resized in float, exactly.
    """
    height, width = image.shape[-2:]
    out_h, out_w = size["height"], size["width"]
    new_h, new_w, top, left = canvas_geometry(height, width, size, resize_mode)
    if image.dtype == torch.uint8 and image.device.type != "cpu":  # the uint8 kernel is the CPU's
        image = image.float()
    same = (new_h, new_w) == (height, width)  # nothing to resample: the resize would be the identity
    resized = image if same else _resize(image, new_h, new_w, RESAMPLE_FILTERS[int(resample)])
    if (new_h, new_w) == (out_h, out_w):  # no pad
        canvas = (resized.clone() if same else resized) if resized.dtype == torch.uint8 else resized.clamp(0, 255)
    elif resized.dtype == torch.uint8:  # letterboxed in uint8 too (the pad is a grey level)
        canvas = torch.full((3, out_h, out_w), int(pad_value), dtype=torch.uint8, device=image.device)
        canvas[:, top : top + new_h, left : left + new_w] = resized
    else:
        canvas = torch.full((3, out_h, out_w), float(pad_value), dtype=image.dtype, device=image.device)
        canvas[:, top : top + new_h, left : left + new_w] = resized.clamp(0, 255)
    if mask is None:
        return canvas, None
    if same:
        resized_mask = mask
    else:
        coverage = _resize(mask[None].float(), new_h, new_w)[0]
        resized_mask = coverage >= 0.5
        if not resized_mask.any():  # a tiny ROI must not vanish when the image shrinks
            resized_mask = coverage >= coverage.max()
    if (new_h, new_w) == (out_h, out_w):
        return canvas, resized_mask
    canvas_mask = torch.zeros((out_h, out_w), dtype=torch.bool, device=image.device)
    canvas_mask[top : top + new_h, left : left + new_w] = resized_mask
    return canvas, canvas_mask


def _resize(image: torch.Tensor, height: int, width: int, interpolation=tvF.InterpolationMode.BILINEAR):
    return tvF.resize(image, [height, width], interpolation=interpolation, antialias=True)


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float], do_normalize: bool = True):
    """image 0-255 (uint8 or float) -> float32 [0, 1], then `(x - mean) / std` per channel when `do_normalize`: the
    rescale fused into the normalisation (`(x - 255 mean) / (255 std)`), as transformers' torchvision backend does."""
    converted = image.dtype != torch.float32  # a new tensor: normalised in place, as the backend does
    image = image.to(torch.float32) if converted else image
    if not do_normalize:
        return image.div_(255.0) if converted else image / 255.0
    return tvF.normalize(image, [255.0 * m for m in mean], [255.0 * s for s in std], inplace=converted)


def hidden_view(canvas: torch.Tensor, cutout_style: str) -> torch.Tensor | None:
    """What a cut-out shows where it hides the other part (before normalisation): None for a constant (`"fill"`),
    the canvas strongly blurred (`"blur"`: Gaussian, sigma 1/16 of the shorter side), or darkened to a quarter of
    its brightness (`"dim"`). A tower then keeps a hint of what it is not meant to read."""
    if cutout_style == "fill":
        return None
    canvas = canvas if canvas.is_floating_point() else canvas.float()
    if cutout_style == "dim":
        return canvas * 0.25
    if canvas.dim() == 4:  # a batch of canvases: each blurred alike
        return torch.stack([hidden_view(one, cutout_style) for one in canvas])
    sigma = min(canvas.shape[-2:]) / 16
    radius = min(math.ceil(3 * sigma), min(canvas.shape[-2:]) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=canvas.dtype, device=canvas.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).expand(3, 1, -1)
    blurred = F.conv2d(F.pad(canvas[None], (radius, radius, 0, 0), mode="reflect"), kernel[:, :, None], groups=3)
    blurred = F.conv2d(F.pad(blurred, (0, 0, radius, radius), mode="reflect"), kernel[:, :, :, None], groups=3)
    return blurred[0]


def to_canvas(settings: Mapping[str, Any], image: torch.Tensor, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One photo (3, H, W tensor) and its bool (H, W) mask at the output geometry (`resize_to_canvas`, the mask on
    the photo's device)."""
    mask = torch.from_numpy(np.array(mask, dtype=bool)).to(image.device)
    return resize_to_canvas(
        image, mask, settings["size"], settings["resize_mode"], settings["pad_value"], settings["resample"]
    )


def cut_out(
    settings: Mapping[str, Any], canvas: torch.Tensor, canvas_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(roi, context) of a canvas (3, H, W, 0-255, uint8 or float; or a batch of them) and its ROI mask at that
    size, each normalised for its tower; where a cut-out hides, `fill_value` (`cutout_style="fill"`) or
    `hidden_view`'s view, normalised alike. Towers with the same statistics share one normalised canvas."""
    hidden = hidden_view(canvas, settings["cutout_style"])
    canvas_mask = canvas_mask.unsqueeze(-3)  # over the channels, of one canvas (3, H, W) or a batch (N, 3, H, W)
    stats = {tower: _stats(settings, tower) for tower in ("roi", "context")}
    do_normalize, fill_value, complement = settings["do_normalize"], settings["fill_value"], settings["context_mode"]
    shown = {"roi": normalize(canvas, *stats["roi"], do_normalize)}
    same = stats["context"] == stats["roi"]
    shown["context"] = shown["roi"] if same else normalize(canvas, *stats["context"], do_normalize)
    if hidden is None:
        roi = shown["roi"].masked_fill(~canvas_mask, fill_value)
        if complement != "complement":
            return roi, shown["context"]
        return roi, shown["context"].masked_fill_(canvas_mask, fill_value)  # roi is its own copy
    covered = {tower: normalize(hidden, *stats[tower], do_normalize) for tower in stats}
    roi = torch.where(canvas_mask, shown["roi"], covered["roi"])
    if complement != "complement":
        return roi, shown["context"]
    return roi, torch.where(canvas_mask, covered["context"], shown["context"])


def _stats(settings: Mapping[str, Any], tower: str) -> tuple[list[float], list[float]]:
    return settings[f"{tower}_image_mean"], settings[f"{tower}_image_std"]


def token_masks(settings: Mapping[str, Any], canvas_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The patches each tower reads (`token_grid_rvernet.token_keep_masks` with the settings' `patch_size`,
    `token_keep_threshold`, `token_margin` and `context_mode`); empty without a `patch_size`."""
    return token_keep_masks(
        canvas_mask,
        settings["patch_size"],
        settings["token_keep_threshold"],
        settings["token_margin"],
        settings["context_mode"],
    )


def cut_then_resize(
    settings: Mapping[str, Any], image: torch.Tensor, mask: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The official code's order (`cut_before_resize=True`): the two cut-outs made at the photo's size (the hidden part
    black), then each resized and letterboxed on its own (its pad grey). Returns (ROI canvas, context canvas, the
    mask at the output size), before normalisation."""
    mask = torch.from_numpy(np.array(mask, dtype=bool)).to(image.device)
    geometry = (settings["size"], settings["resize_mode"], settings["pad_value"], settings["resample"])
    roi, canvas_mask = resize_to_canvas(image * mask, mask, *geometry)
    context = image * ~mask if settings["context_mode"] == "complement" else image
    return roi, resize_to_canvas(context, None, *geometry)[0], canvas_mask


def sample_cutouts(
    settings: Mapping[str, Any], image: torch.Tensor, mask: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One photo (3, H, W tensor) and its bool mask -> (roi, context, the mask at the output size), normalised: what
    `cutout_batch` makes of it, in either order (`cut_before_resize`)."""
    if settings["cut_before_resize"]:
        roi, context, canvas_mask = cut_then_resize(settings, image, mask)
        shown = [
            normalize(view, *_stats(settings, t), settings["do_normalize"])
            for view, t in ((roi, "roi"), (context, "context"))
        ]
        return (*shown, canvas_mask)
    canvas, canvas_mask = to_canvas(settings, image, mask)
    return (*cut_out(settings, canvas, canvas_mask), canvas_mask)


def cutout_batch(
    settings: Mapping[str, Any], arrays: list, masks_per_image: list, device=None, with_boxes: bool = False
) -> dict[str, torch.Tensor]:
    """One sample per (image, mask): the two cut-outs, `roi_image_index`, the token masks when `patch_size` is set,
    and with `with_boxes` each mask's extent `roi_boxes`. Each sample is resized on its own; the normalisation and
    the cut-out fills run once over the stacked batch (the same values as `cut_out` per sample). With
    `cut_before_resize`, each sample's cut-outs are `cut_then_resize`'s, normalised once over the batch."""
    canvases, canvas_masks, image_index, boxes = [], [], [], []
    for index, (array, masks) in enumerate(zip(arrays, masks_per_image)):
        tensor = to_chw_uint8(array).to(device)
        for mask in masks:
            if settings["cut_before_resize"]:
                roi, context, canvas_mask = cut_then_resize(settings, tensor, mask)
                canvases.append((roi, context))
            else:
                canvas, canvas_mask = to_canvas(settings, tensor, mask)
                canvases.append(canvas)
            canvas_masks.append(canvas_mask)
            image_index.append(index)
            boxes.append(mask_box(mask) if with_boxes else None)
    canvas_masks = torch.stack(canvas_masks)
    if settings["cut_before_resize"]:
        rois, contexts = (
            normalize(torch.stack([pair[k] for pair in canvases]), *_stats(settings, tower), settings["do_normalize"])
            for k, tower in enumerate(("roi", "context"))
        )
    else:
        rois, contexts = cut_out(settings, torch.stack(canvases), canvas_masks)
    data = {
        "roi_pixel_values": rois,
        "context_pixel_values": contexts,
        "roi_image_index": torch.tensor(image_index, dtype=torch.long, device=device),
        **token_masks(settings, canvas_masks),
    }
    if with_boxes:
        data["roi_boxes"] = torch.tensor(boxes, dtype=torch.long, device=device)
    return data


def pair_batch(settings: Mapping[str, Any], roi_images: Any, context_images: Any, input_data_format=None) -> dict:
    """Already-cut pairs (an image each, or lists of them) -> the two inputs: each image read (`load_image`),
    letterboxed/resized and normalised for its tower; nothing is masked again."""
    if not isinstance(roi_images, (list, tuple)):
        roi_images, context_images = [roi_images], [context_images]
    if len(roi_images) != len(context_images):
        raise ValueError(f"{len(roi_images)} ROI images but {len(context_images)} context images: they pair 1:1.")
    inputs = {}
    for tower, images in (("roi", roi_images), ("context", context_images)):
        mean, std = settings[f"{tower}_image_mean"], settings[f"{tower}_image_std"]
        canvases = []
        for index, image in enumerate(images):
            array = load_image(image, index, settings["pad_value"], input_data_format, settings["do_convert_rgb"])
            geometry = (settings["size"], settings["resize_mode"], settings["pad_value"], settings["resample"])
            canvas, _ = resize_to_canvas(to_chw_uint8(array), None, *geometry)
            canvases.append(normalize(canvas, mean, std, settings["do_normalize"]))
        inputs[f"{tower}_pixel_values"] = torch.stack(canvases)
    return inputs


__all__ = ["cut_out", "cutout_batch", "hidden_view", "normalize", "pair_batch", "resize_to_canvas", "to_canvas"]
