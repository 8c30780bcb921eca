# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Image processor for RveRNet: photos (+ an ROI mask, box, points, text, or nothing) -> ROI and context cut-outs.

The processor holds settings, not weights, and is about pixels: letterbox/resize, normalisation, cut-outs and the
token masks of sparse towers. Its settings live on transformers' own machinery: defaults are class attributes,
`valid_kwargs` lists every saved and per-call setting, and `BaseImageProcessor._set_attributes` applies them (at
construction, and on a copy for one call). The rest is delegated, each to one flat module (all uploaded next to the
weights and read by the Hub's remote-code loader; they import only torch, numpy, PIL and transformers):

- `image_utils_rvernet`: reading photos and masks (`load_image`, `load_mask`);
- `prompts_rvernet`: prompt nesting and checks, one request per image (as `SamProcessor`);
- `segmentation_rvernet`: the segmenter's settings (`SegmenterSettings`, saved flat as `sam_*`, `mask_threshold`,
  `auto_roi*`, `all_objects_*`, `text_*`) and requests -> masks, with the models of `segmenters_rvernet`;
- `token_grid_rvernet`: which patches each tower reads (shared with the model).

Pixel contract (per sample, at the output size, after letterbox/resize and per-tower normalisation `N_t`):

    roi_pixel_values     = where(mask, N_roi(image), fill_value)
    context_pixel_values = where(mask, fill_value, N_context(image))   # context_mode="complement" (the paper)
                         = N_context(image)                            # context_mode="full"

Letterbox padding lies outside the ROI, so it is `fill_value` in the ROI cut-out and the grey `pad_value` (normalised)
in the context cut-out.
"""

import copy
import math
from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.utils import logging

from .image_utils_rvernet import describe_image, load_image, load_mask, mask_box, to_chw_uint8
from .prompts_rvernet import check_prompt_arguments, image_request, prompts_per_image
from .segmentation_rvernet import SegmenterSettings, find_roi_masks, segmenter_for
from .segmenters_rvernet import load_segmenter
from .token_grid_rvernet import normalize_patch_sizes, token_keep_masks


logger = logging.get_logger(__name__)

RESIZE_MODES = ("letterbox", "resize")
CONTEXT_MODES = ("complement", "full")
CUTOUT_STYLES = ("fill", "blur", "dim")
_TOWER_STATS = ("roi_image_mean", "roi_image_std", "context_image_mean", "context_image_std")


class RveRNetImageProcessorKwargs(TypedDict, total=False):
    """Every setting of `RveRNetImageProcessor` (saved in `preprocessor_config.json`; each can also be given to one
    call). The pixel settings' defaults are the processor's class attributes; the segmenter's are
    `SegmenterSettings`' (their flat names). Of transformers' `ImagesKwargs`, only those this processor reads: the
    others (rescale factor, crop, ...) would be saved and never used."""

    size: dict[str, int]
    do_normalize: bool
    do_convert_rgb: bool
    image_mean: list[float] | None  # both towers at once: never saved, see `_both_towers`
    image_std: list[float] | None
    resize_mode: str
    pad_value: int
    roi_image_mean: list[float]
    roi_image_std: list[float]
    context_image_mean: list[float]
    context_image_std: list[float]
    context_mode: str
    fill_value: float
    cutout_style: str
    patch_size: int | dict[str, int | None] | None
    token_keep_threshold: float
    token_margin: int
    # The segmenter (`SegmenterSettings`, flat).
    sam_model_name_or_path: str
    sam_revision: str | None
    sam_device: str | None
    sam_dtype: str
    sam_batch_size: int
    mask_threshold: float
    auto_roi: str
    auto_roi_points_per_side: int
    auto_roi_min_area: float
    auto_roi_max_area: float
    auto_roi_center_weight: float
    auto_roi_fallback_fraction: float
    all_objects_points_per_side: int
    all_objects_points_per_batch: int
    all_objects_pred_iou_threshold: float
    all_objects_stability_threshold: float
    all_objects_nms_threshold: float
    all_objects_min_area: float
    all_objects_max_area: float
    all_objects_max_regions: int
    all_objects_strategy: str
    text_score_threshold: float
    text_mask_threshold: float


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
    """image (3, h, w) uint8 or float 0-255 and an optional mask (h, w) bool -> the same geometry at `size` (the
    canvas in the image's dtype: `normalize` converts a uint8 one in the same pass).

    `"letterbox"` keeps the aspect ratio and pads with `pad_value`; `"resize"` stretches. Bilinear, antialiased. A mask
    keeps every pixel at least half covered, and a tiny ROI never vanishes when the image shrinks. A uint8 image on
    the CPU is resized and letterboxed in uint8 (torch's fixed-point antialiased kernel, 3-5x faster than in float):
    every pixel within one grey level of the float resize (rounding); the mask is resized in float, exactly.
    """
    height, width = image.shape[-2:]
    out_h, out_w = size["height"], size["width"]
    if resize_mode == "resize":
        new_h, new_w, top, left = out_h, out_w, 0, 0
    else:
        scale = min(out_h / height, out_w / width)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    if image.dtype == torch.uint8 and image.device.type != "cpu":  # the uint8 kernel is the CPU's
        image = image.float()
    same = (new_h, new_w) == (height, width)  # nothing to resample: the resize would be the identity
    resized = image if same else _resize(image[None], new_h, new_w)[0]
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
        coverage = _resize(mask[None, None].float(), new_h, new_w)[0, 0]
        resized_mask = coverage >= 0.5
        if not resized_mask.any():  # a tiny ROI must not vanish when the image shrinks
            resized_mask = coverage >= coverage.max()
    if (new_h, new_w) == (out_h, out_w):
        return canvas, resized_mask
    canvas_mask = torch.zeros((out_h, out_w), dtype=torch.bool, device=image.device)
    canvas_mask[top : top + new_h, left : left + new_w] = resized_mask
    return canvas, canvas_mask


def _resize(batch: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(batch, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float], do_normalize: bool = True):
    """image 0-255 (uint8 or float) -> float [0, 1], then `(x - mean) / std` per channel when `do_normalize`: one
    fused `shift + x * scale` pass (scale = 1 / (255 std), shift = -mean / std)."""
    if not do_normalize:
        return image / 255.0
    dtype = image.dtype if image.is_floating_point() else torch.float32
    std_t = torch.tensor(std, dtype=dtype, device=image.device).view(3, 1, 1)
    mean_t = torch.tensor(mean, dtype=dtype, device=image.device).view(3, 1, 1)
    return torch.addcmul(-mean_t / std_t, image, 1 / (255.0 * std_t))


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


def to_canvas(processor, image: torch.Tensor, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One photo (3, H, W tensor) and its bool (H, W) mask at the processor's output geometry (`resize_to_canvas`,
    the mask on the photo's device)."""
    mask = torch.from_numpy(np.array(mask, dtype=bool)).to(image.device)
    return resize_to_canvas(image, mask, processor.size, processor.resize_mode, processor.pad_value)


def cut_out(processor, canvas: torch.Tensor, canvas_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(roi, context) of a canvas (3, H, W, 0-255, uint8 or float) and its ROI mask at that size, each normalised for its tower;
    where a cut-out hides, `fill_value` (`cutout_style="fill"`) or `hidden_view`'s view, normalised alike. Towers
    with the same statistics share one normalised canvas."""
    hidden = hidden_view(canvas, processor.cutout_style)
    canvas_mask = canvas_mask.unsqueeze(-3)  # over the channels, of one canvas (3, H, W) or a batch (N, 3, H, W)
    stats = {
        tower: (getattr(processor, f"{tower}_image_mean"), getattr(processor, f"{tower}_image_std"))
        for tower in ("roi", "context")
    }
    shown = {"roi": normalize(canvas, *stats["roi"], processor.do_normalize)}
    same = stats["context"] == stats["roi"]
    shown["context"] = shown["roi"] if same else normalize(canvas, *stats["context"], processor.do_normalize)
    if hidden is None:
        roi = shown["roi"].masked_fill(~canvas_mask, processor.fill_value)
        if processor.context_mode != "complement":
            return roi, shown["context"]
        return roi, shown["context"].masked_fill_(canvas_mask, processor.fill_value)  # roi is its own copy
    covered = {tower: normalize(hidden, *stats[tower], processor.do_normalize) for tower in stats}
    roi = torch.where(canvas_mask, shown["roi"], covered["roi"])
    if processor.context_mode != "complement":
        return roi, shown["context"]
    return roi, torch.where(canvas_mask, covered["context"], shown["context"])


class RveRNetImageProcessor(BaseImageProcessor):
    r"""
    Turns photos into RveRNet's two inputs, `roi_pixel_values` and `context_pixel_values`.

    Per image, the ROI comes from one of: a mask (`roi_masks`), a box (`input_boxes`), one or more points
    (`input_points` + `input_labels`), a text prompt (`text`, SAM 3), every object (`all_objects=True`) or nothing
    (the automatic ROI). Several ROIs of one image give one sample each; `roi_image_index` maps samples back to
    images. Boxes and points are turned into masks by the segmenter, whose image embedding is computed once per image
    however many prompts it has, with images batched through it.

    Args (every one is also a per-call override, and is saved in `preprocessor_config.json`):
        size (`dict`, *optional*, defaults to `{"height": 224, "width": 224}`): Output size of both cut-outs.
        resize_mode (`str`, *optional*, defaults to `"letterbox"`):
            `"letterbox"` keeps the aspect ratio and pads with `pad_value` (the paper); `"resize"` stretches.
        pad_value (`int`, *optional*, defaults to 125): Grey level (0-255) of letterbox padding, as the paper.
        do_normalize (`bool`, *optional*, defaults to `True`): Normalise each cut-out with its tower's mean/std.
        do_convert_rgb (`bool`, *optional*, defaults to `True`): Convert grey, RGBA, 16-bit, ... images to RGB
            (refused instead when False).
        roi_image_mean, roi_image_std (`list[float]`, *optional*, default ImageNet): Normalisation of the ROI tower.
        context_image_mean, context_image_std (`list[float]`, *optional*, default ImageNet): Normalisation of the
            context tower. `RveRNetImageProcessor.from_towers_pretrained` fills all four from the towers' processors.
            `image_mean` / `image_std` set both towers at once.
        context_mode (`str`, *optional*, defaults to `"complement"`):
            `"complement"`: the context cut-out has the ROI blacked out (the paper); `"full"`: the untouched image.
        fill_value (`float`, *optional*, defaults to 0.0):
            The value written (after normalisation) where a cut-out hides pixels. 0.0 is each tower's mean colour.
        cutout_style (`str`, *optional*, defaults to `"fill"`): What a cut-out shows where it hides: `"fill"`
            (`fill_value`, the paper), `"blur"` or `"dim"` (the hidden part blurred or darkened; see `hidden_view`).
        patch_size (`int` or `dict`, *optional*), token_keep_threshold (`float`, defaults to 0.0), token_margin
            (`int`, defaults to 0): With `patch_size` (each ViT-family tower's, `{"roi": 16, "context": 16}` or an
            int for both, as `model.token_patch_sizes` gives it; `size` must be a multiple of it) the output also has
            `roi_token_mask` / `context_token_mask` `(N, num_patches)` bool: the patches each tower reads under
            `token_selection="mask"` (dense models ignore them). A patch belongs to a tower's region when more than
            `token_keep_threshold` (in [0, 1)) of its pixels do; `token_margin` adds a ring of that many patches
            (see `token_grid_rvernet.token_keep_masks`).
        sam_model_name_or_path, sam_revision, sam_device, sam_dtype, sam_batch_size, mask_threshold,
        auto_roi, auto_roi_*, all_objects_*, text_*:
            The segmenter's settings under their flat names, documented (with their defaults) in
            `segmentation_rvernet.SegmenterSettings`, `AutoRoiSettings`, `AllObjectsSettings` and `TextSettings`;
            `processor.segmenter_settings` gives them as that one object. The segmenter (SAM by default) is loaded
            lazily on the first call that needs it (never when masks are given), once per process.
        sam_model (*optional*): An already-built promptable segmenter to use instead of loading
            `sam_model_name_or_path` (see `set_sam_model`); never saved.

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
    valid_kwargs = RveRNetImageProcessorKwargs
    # The pixel settings' defaults (the segmenter's are set below the class, from `SegmenterSettings`).
    size = {"height": 224, "width": 224}
    resize_mode = "letterbox"
    pad_value = 125
    do_normalize = True
    do_convert_rgb = True
    roi_image_mean = IMAGENET_DEFAULT_MEAN
    roi_image_std = IMAGENET_DEFAULT_STD
    context_image_mean = IMAGENET_DEFAULT_MEAN
    context_image_std = IMAGENET_DEFAULT_STD
    context_mode = "complement"
    fill_value = 0.0
    cutout_style = "fill"
    patch_size = None
    token_keep_threshold = 0.0
    token_margin = 0

    def __init__(self, sam_model: Any = None, **kwargs: Any):
        settings = {name: kwargs.pop(name) for name in list(kwargs) if name in self.valid_kwargs.__annotations__}
        super().__init__(**unknown_settings(kwargs))
        self._set_attributes(**_both_towers(settings))
        self._validate_settings()
        self._sam = None  # a segmenter the caller gave (set_sam_model), never serialised
        if sam_model is not None:
            self.set_sam_model(sam_model)

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs: Any):
        # A folder saved before `all_objects_strategy` existed decoded every grid point: it keeps doing so.
        return super().from_dict({"all_objects_strategy": "grid", **image_processor_dict}, **kwargs)

    def _standardize_kwargs(self, **settings: Any) -> dict[str, Any]:
        """Each setting in its canonical (saved) type (see `canonical_settings`)."""
        return canonical_settings(settings)

    def _validate_settings(self) -> None:
        """Refuse, naming it, a setting this processor cannot use (see `check_settings`)."""
        check_settings(self)

    def _for_call(self, overrides: dict[str, Any]) -> "RveRNetImageProcessor":
        """This processor with `overrides` applied for one call (validated as in the constructor); `self` untouched."""
        unknown = sorted(set(overrides) - set(self.valid_kwargs.__annotations__))
        if unknown:
            raise TypeError(
                f"Unexpected arguments for RveRNetImageProcessor: {unknown}. Per call it takes its settings "
                f"({', '.join(SETTINGS)}), `image_mean`/`image_std` (both towers), `input_data_format`, `device`, "
                "`sam_model`, `return_tensors` and `return_roi_masks`."
            )
        if not overrides:
            return self
        call = copy.copy(self)
        call._set_attributes(**_both_towers(overrides))
        call._validate_settings()
        return call

    @property
    def segmenter_settings(self) -> SegmenterSettings:
        """The segmenter's settings (saved flat on the processor) as one object."""
        return SegmenterSettings.from_flat(vars(self))

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        return {key: value for key, value in output.items() if not key.startswith("_")}

    @classmethod
    def from_towers_pretrained(
        cls, roi_model_name_or_path: str, context_model_name_or_path: str, revision: str | None = None, **kwargs
    ) -> "RveRNetImageProcessor":
        """A processor whose per-tower normalisation (and, unless given, output size) come from each tower's own
        image processor (Hub id or folder, at `revision`), as `RveRNetForImageClassification.from_towers_pretrained`
        pairs them."""
        settings = tower_settings(roi_model_name_or_path, context_model_name_or_path, revision)
        return cls(**{**settings, **kwargs})

    # ------------------------------------------------------------------------------------------- segmenter

    def set_sam_model(self, sam_model: Any, sam_image_processor: Any = None) -> None:
        """Use an already-built promptable segmenter (any family of `segmenters_rvernet.SEGMENTER_FAMILIES`, for
        example a tiny random one in tests; SAM 3 with its `Sam3Processor`) instead of loading
        `sam_model_name_or_path`; refused if it is not one."""
        self._sam = segmenter_for(sam_model, sam_image_processor)

    def get_segmenter(self):
        """The segmenter: the one given with `sam_model`, else `sam_model_name_or_path` loaded on first use (on
        `sam_device`, in `sam_dtype`) through `AutoModelForMaskGeneration` and shared across the process."""
        if self._sam is not None:
            return self._sam
        return load_segmenter(self.sam_model_name_or_path, self.sam_revision, self.sam_device, self.sam_dtype)

    # ------------------------------------------------------------------------------------------- cut-outs

    def make_cutouts(
        self, image: np.ndarray, mask: np.ndarray, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One RGB uint8 (H, W, 3) image and its bool (H, W) mask -> (roi, context, mask at the output size),
        computed on `device` (default CPU)."""
        canvas, canvas_mask = to_canvas(self, to_chw_uint8(image).to(device), mask)
        return (*cut_out(self, canvas, canvas_mask), canvas_mask)

    def token_masks(self, canvas_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The patches each tower reads (see `patch_size`), from the ROI mask at the output size (`make_cutouts`'
        third result, or a stack of them): `{"roi_token_mask": (num_patches,) bool, "context_token_mask": ...}`
        (`(N, num_patches)` for a stack) for the towers with a patch size, empty when `patch_size` is not set."""
        return token_keep_masks(
            canvas_mask, self.patch_size, self.token_keep_threshold, self.token_margin, self.context_mode
        )

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
        data = pair_batch(self, roi_images, context_images, input_data_format)
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
        """Read the images and find each one's ROI masks (given, from segmenter prompts, or automatic); no cut-outs.

        Everything is read and checked before the segmenter runs. Returns the RGB uint8 arrays and, per image, its
        list of bool masks at the original size. Arguments as in `preprocess`.
        """
        processor = self._for_call(settings)
        check_prompt_arguments(roi_masks, input_points, input_labels, input_boxes, all_objects, text)
        batched = isinstance(images, (list, tuple))
        image_list = list(images) if batched else [images]
        if not image_list:
            raise ValueError("`images` is empty.")
        prompts = prompts_per_image(len(image_list), batched, roi_masks, input_points, input_labels, input_boxes, text)
        arrays, requests = read_images(
            image_list, prompts, all_objects, processor.pad_value, input_data_format, processor.do_convert_rgb
        )
        name = processor.sam_model_name_or_path if processor._sam is None else type(processor._sam.model).__name__
        return arrays, find_roi_masks(arrays, requests, processor.segmenter_settings, processor.get_segmenter, name)

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
                gets the central box, with a warning. The output then also has `roi_boxes`, as with `all_objects`.
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
        call = self._for_call(settings)  # this call's settings, on a copy: `self` is never changed
        if sam_model is not None:
            call = copy.copy(call)
            call.set_sam_model(sam_model)
        arrays, masks_per_image = call.compute_roi_masks(
            images, roi_masks, input_points, input_labels, input_boxes, input_data_format, all_objects, text
        )
        batch = cutout_batch(call, arrays, masks_per_image, device, with_boxes=all_objects or text is not None)
        if return_tensors is None:
            batch = {key: value.cpu().numpy() for key, value in batch.items()}
        batch = BatchFeature(data=batch, tensor_type=return_tensors)
        if return_roi_masks:
            batch["roi_masks"] = [mask for masks in masks_per_image for mask in masks]
        return batch


# Keys a saved config may hold that are not settings (transformers' bookkeeping).
_CONFIG_METADATA = {
    "image_processor_type",
    "processor_class",
    "feature_extractor_type",
    "auto_map",
    "_processor_class",
}


def unknown_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the constructor got that is not a setting. Kept as attributes, as transformers does (a config saved by
    another version loads), but never silently: a misspelt setting would otherwise do nothing."""
    unknown = sorted(set(kwargs) - _CONFIG_METADATA)
    if unknown:
        logger.warning(
            f"RveRNetImageProcessor: {unknown} are not settings of this processor and change nothing (misspelt? its "
            f"settings: {', '.join(SETTINGS)})."
        )
    return kwargs


def canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Each setting in its canonical (saved) type: `size` a `{"height", "width"}` dict of ints, means and stds
    lists of floats, `patch_size` `{"roi": p, "context": q}`, the segmenter's in `SegmenterSettings`' types."""
    size = settings.get("size")
    if size is not None:
        size = {"height": size, "width": size} if isinstance(size, int) else dict(size)
        settings["size"] = {key: int(value) for key, value in size.items()}
    for name in _TOWER_STATS:
        if settings.get(name) is not None:
            settings[name] = [float(value) for value in settings[name]]
    if settings.get("patch_size") is not None:
        settings["patch_size"] = normalize_patch_sizes(settings["patch_size"])
    for name, kind in (("pad_value", int), ("fill_value", float), ("token_keep_threshold", float)):
        if settings.get(name) is not None:
            settings[name] = kind(settings[name])
    if settings.get("token_margin") is not None:
        settings["token_margin"] = int(settings["token_margin"])
    for name in SegmenterSettings.flat_fields():
        if name in settings:
            settings[name] = SegmenterSettings.convert_flat(name, settings[name])
    return settings


def check_settings(processor: RveRNetImageProcessor) -> None:
    """Refuse, naming it, a setting the processor cannot use (the segmenter's are checked by its settings)."""
    if processor.resize_mode not in RESIZE_MODES:
        raise ValueError(f"`resize_mode` must be one of {RESIZE_MODES}, got {processor.resize_mode!r}.")
    if processor.context_mode not in CONTEXT_MODES:
        raise ValueError(f"`context_mode` must be one of {CONTEXT_MODES}, got {processor.context_mode!r}.")
    if set(processor.size) != {"height", "width"} or min(processor.size.values()) < 1:
        raise ValueError(f"`size` must be {{'height': H, 'width': W}} with positive H, W, got {processor.size}.")
    for name in _TOWER_STATS:
        if len(getattr(processor, name)) != 3:
            raise ValueError(f"`{name}` must have 3 values (RGB), got {getattr(processor, name)}.")
    for name in ("do_normalize", "do_convert_rgb"):
        if not isinstance(getattr(processor, name), bool):
            raise ValueError(f"`{name}` must be True or False, got {getattr(processor, name)!r}.")
    if not 0 <= processor.pad_value <= 255:
        raise ValueError(f"`pad_value` must be a grey level in [0, 255], got {processor.pad_value!r}.")
    if processor.cutout_style not in CUTOUT_STYLES:
        raise ValueError(f"`cutout_style` must be one of {CUTOUT_STYLES}, got {processor.cutout_style!r}.")
    if not math.isfinite(processor.fill_value):
        raise ValueError(f"`fill_value` must be a finite number, got {processor.fill_value!r}.")
    if processor.token_margin < 0:
        raise ValueError(f"`token_margin` must be >= 0 patches, got {processor.token_margin}.")
    if not 0.0 <= processor.token_keep_threshold < 1.0:
        raise ValueError(f"`token_keep_threshold` must be in [0, 1), got {processor.token_keep_threshold}.")
    for tower, patch in (processor.patch_size or {}).items():
        if patch is not None and (processor.size["height"] % patch or processor.size["width"] % patch):
            raise ValueError(
                f"`size` {processor.size} is not a multiple of the {tower} tower's `patch_size` {patch}: its token "
                "grid would not cover the cut-out."
            )
    if any(value == 0 for value in (*processor.roi_image_std, *processor.context_image_std)):
        raise ValueError("`roi_image_std` and `context_image_std` must not contain 0 (it divides).")
    processor.segmenter_settings.validate()


def tower_settings(roi_model_name_or_path: str, context_model_name_or_path: str, revision: str | None) -> dict:
    """Per-tower normalisation (and the ROI tower's input size) read from each tower's own image processor."""
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
    return settings


def read_images(
    image_list: list, prompts: list, all_objects: bool, pad_value: int, input_data_format, do_convert_rgb: bool
) -> tuple[list[np.ndarray], list[dict]]:
    """Every image read (RGB uint8) and its request made and checked (`prompts_rvernet.image_request`), before
    any segmenter runs."""
    arrays, requests = [], []
    for index, (image, image_prompts) in enumerate(zip(image_list, prompts)):
        array = load_image(image, index, pad_value, input_data_format, do_convert_rgb)
        height, width = array.shape[:2]
        if height * width < 2:
            raise ValueError(
                f"{describe_image(index, image)} is {width}x{height}: too small for an ROI and a context (RveRNet "
                "needs both)."
            )
        arrays.append(array)
        requests.append(image_request(index, (height, width), image_prompts, all_objects))
    return arrays, requests


def pair_batch(
    processor: RveRNetImageProcessor, roi_images: Any, context_images: Any, input_data_format=None
) -> dict[str, torch.Tensor]:
    """Already-cut pairs -> the two cut-outs: each image letterboxed/resized and normalised for its tower."""
    if not isinstance(roi_images, (list, tuple)):
        roi_images, context_images = [roi_images], [context_images]
    if len(roi_images) != len(context_images):
        raise ValueError(f"{len(roi_images)} ROI images but {len(context_images)} context images: they pair 1:1.")
    rois, contexts = [], []
    for index, (roi_image, context_image) in enumerate(zip(roi_images, context_images)):
        for source, mean, std, out in (
            (roi_image, processor.roi_image_mean, processor.roi_image_std, rois),
            (context_image, processor.context_image_mean, processor.context_image_std, contexts),
        ):
            array = load_image(source, index, processor.pad_value, input_data_format, processor.do_convert_rgb)
            tensor = to_chw_uint8(array)
            full = torch.ones(array.shape[:2], dtype=torch.bool)
            canvas, _ = resize_to_canvas(tensor, full, processor.size, processor.resize_mode, processor.pad_value)
            out.append(normalize(canvas, mean, std, processor.do_normalize))
    return {"roi_pixel_values": torch.stack(rois), "context_pixel_values": torch.stack(contexts)}


def cutout_batch(
    processor: RveRNetImageProcessor, arrays: list, masks_per_image: list, device=None, with_boxes: bool = False
) -> dict[str, torch.Tensor]:
    """One sample per (image, mask): the two cut-outs, `roi_image_index`, the token masks when `patch_size` is set,
    and with `with_boxes` each mask's extent `roi_boxes`. Each sample is resized on its own; the normalisation and
    the cut-out fills run once over the stacked batch (the same values as `make_cutouts` per sample)."""
    canvases, canvas_masks, image_index, boxes = [], [], [], []
    for index, (array, masks) in enumerate(zip(arrays, masks_per_image)):
        tensor = to_chw_uint8(array).to(device)
        for mask in masks:
            canvas, canvas_mask = to_canvas(processor, tensor, mask)
            canvases.append(canvas)
            canvas_masks.append(canvas_mask)
            image_index.append(index)
            boxes.append(mask_box(mask) if with_boxes else None)
    canvas_masks = torch.stack(canvas_masks)
    rois, contexts = cut_out(processor, torch.stack(canvases), canvas_masks)
    data = {
        "roi_pixel_values": rois,
        "context_pixel_values": contexts,
        "roi_image_index": torch.tensor(image_index, dtype=torch.long, device=device),
        **processor.token_masks(canvas_masks),
    }
    if with_boxes:
        data["roi_boxes"] = torch.tensor(boxes, dtype=torch.long, device=device)
    return data


def _both_towers(settings: dict[str, Any]) -> dict[str, Any]:
    """`image_mean` / `image_std` (transformers' names) as the per-tower settings they stand for, unless those are
    given too."""
    settings = dict(settings)
    for shorthand in ("image_mean", "image_std"):
        value = settings.pop(shorthand, None)
        if value is not None:
            for tower in ("roi", "context"):
                settings.setdefault(f"{tower}_{shorthand}", value)
    return settings


# The segmenter's defaults, written once in `SegmenterSettings`, are the processor's under their flat names.
for _name, _default in SegmenterSettings().to_flat().items():
    setattr(RveRNetImageProcessor, _name, _default)
SETTINGS = tuple(name for name in RveRNetImageProcessorKwargs.__annotations__ if hasattr(RveRNetImageProcessor, name))

__all__ = ["RveRNetImageProcessor", "load_image", "load_mask", "normalize", "resize_to_canvas"]
