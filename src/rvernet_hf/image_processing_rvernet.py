# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Image processor for RveRNet: photos (+ an ROI mask, box, points, text, or nothing) -> ROI and context cut-outs.

The processor holds settings, not weights, on transformers' own machinery: a torchvision-backend image processor
whose defaults are class attributes, whose `valid_kwargs` types every saved and per-call setting, and whose calls go
through `BaseImageProcessor.preprocess`'s chain (typed validation, the saved settings merged under the call's,
`_validate_preprocess_kwargs`, `_preprocess_image_like_inputs` -> `_preprocess`), the way `SamImageProcessor` takes
its `segmentation_maps`; nothing is copied or changed per call. The work is delegated, each to one flat module (all
uploaded next to the weights and read by the Hub's remote-code loader; they import only torch, torchvision, numpy,
PIL and transformers):

- `image_utils_rvernet`: reading photos and masks (`load_image`, `load_mask`);
- `prompts_rvernet`: what to classify in each photo (`RoiPrompt`, the one prompt parser and checker);
- `roi_masks_rvernet`: prompts -> ROI masks with the segmenter, and its settings as one object (`SegmenterSettings`,
  saved flat as `sam_*`, `mask_threshold`, `auto_roi*`, `all_objects_*`, `text_*`); the models run in
  `segmenters_rvernet`;
- `cutouts_rvernet`: the pixels (resize to the canvas, normalisation, the two cut-outs and their pixel contract);
- `token_grid_rvernet`: which patches each tower reads (shared with the model).
"""

import typing
from typing import Any, TypedDict

import numpy as np
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.utils import logging

from .cutouts_rvernet import (
    RESAMPLE_FILTERS,
    cutout_batch,
    normalize,
    pair_batch,
    resize_to_canvas,
    sample_cutouts,
    token_masks,
)
from .image_utils_rvernet import describe_image, load_image, load_mask, to_chw_uint8
from .prompts_rvernet import RoiPrompt
from .roi_masks_rvernet import SegmenterSettings, find_roi_masks, segmenter_for
from .segmenters_rvernet import load_segmenter
from .token_grid_rvernet import normalize_patch_sizes


logger = logging.get_logger(__name__)

RESIZE_MODES = ("letterbox", "letterbox_official", "resize")
CONTEXT_MODES = ("complement", "full")
CUTOUT_STYLES = ("fill", "blur", "dim")
_TOWER_STATS = ("roi_image_mean", "roi_image_std", "context_image_mean", "context_image_std")
_SEGMENTER_DEFAULTS = SegmenterSettings().to_flat()  # the segmenter's defaults, written once in SegmenterSettings
_Number = float | int
_Stats = list[_Number] | tuple[_Number, ...]


class RveRNetImageProcessorKwargs(TypedDict, total=False):
    r"""Every setting of `RveRNetImageProcessor`, typed (saved in `preprocessor_config.json`; each can also be given
    to one call). Their defaults are the processor's class attributes. Of transformers' `ImagesKwargs`, only those
    this processor reads: the others (rescale factor, crop, ...) would be saved and never used.

    size (`dict`, *optional*, defaults to `{"height": 224, "width": 224}`): Output size of both cut-outs.
    resize_mode (`str`, *optional*, defaults to `"letterbox"`):
        `"letterbox"` keeps the aspect ratio and pads with `pad_value` (the paper); `"letterbox_official"` does it as
        the official code's `ResizeAndPad` (the short side floored, the odd pad pixel on the left/top); `"resize"`
        stretches.
    resample (`int`, *optional*, defaults to `PILImageResampling.BILINEAR`): The photo's resampling filter:
        bilinear, or `PILImageResampling.BICUBIC` (PIL's default, the official code's); antialiased either way.
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
    cut_before_resize (`bool`, *optional*, defaults to `False`): Cut at the photo's size (the hidden part black),
        then resize and letterbox each cut-out on its own (its pad grey): the official code's order, whose
        cut-outs it reproduces. Goes with `cutout_style="fill"` and `fill_value=0.0` (the hidden part is black in the
        photo). `False`: the photo and its mask are resized, then cut at the output size (a sharp ROI edge).
    patch_size (`int` or `dict`, *optional*), token_keep_threshold (`float`, defaults to 0.0), token_margin
        (`int`, defaults to 0): With `patch_size` (each ViT-family tower's, `{"roi": 16, "context": 16}` or an
        int for both, as `model.token_patch_sizes` gives it; `size` must be a multiple of it) the output also has
        `roi_token_mask` / `context_token_mask` `(N, num_patches)` bool: the patches each tower reads under
        `token_selection="mask"` (dense models ignore them). A patch belongs to a tower's region when more than
        `token_keep_threshold` (in [0, 1)) of its pixels do; `token_margin` adds a ring of that many patches
        (see `token_grid_rvernet.token_keep_masks`).
    sam_model_name_or_path, sam_revision, sam_device, sam_dtype, sam_batch_size, mask_threshold,
    auto_roi, auto_roi_*, all_objects_*, text_*:
        The segmenter's settings under their flat (saved) names, documented with their defaults in
        `roi_masks_rvernet.SegmenterSettings`, `AutoRoiSettings`, `AllObjectsSettings` and `TextSettings`;
        `processor.segmenter_settings` gives them as that one object. The segmenter (SAM by default) is loaded
        lazily on the first call that needs it (never when masks are given), once per process.
        `set_settings(...)` changes saved settings after construction, validated.
    """

    size: int | dict[str, int]
    do_normalize: bool
    do_convert_rgb: bool
    image_mean: _Stats | None  # both towers at once: never saved, see `_both_towers`
    image_std: _Stats | None
    resize_mode: str
    resample: int
    pad_value: int
    roi_image_mean: _Stats
    roi_image_std: _Stats
    context_image_mean: _Stats
    context_image_std: _Stats
    context_mode: str
    fill_value: _Number
    cutout_style: str
    cut_before_resize: bool
    patch_size: int | dict[str, int | None] | None
    token_keep_threshold: _Number
    token_margin: int
    # The segmenter (`SegmenterSettings`, flat).
    sam_model_name_or_path: str
    sam_revision: str | None
    sam_device: str | None
    sam_dtype: str
    sam_batch_size: int
    mask_threshold: _Number
    auto_roi: str
    auto_roi_points_per_side: int
    auto_roi_min_area: _Number
    auto_roi_max_area: _Number
    auto_roi_center_weight: _Number
    auto_roi_fallback_fraction: _Number
    all_objects_points_per_side: int
    all_objects_points_per_batch: int
    all_objects_pred_iou_threshold: _Number
    all_objects_stability_threshold: _Number
    all_objects_nms_threshold: _Number
    all_objects_min_area: _Number
    all_objects_max_area: _Number
    all_objects_max_regions: int
    all_objects_strategy: str
    text_score_threshold: _Number
    text_mask_threshold: _Number


SETTINGS = tuple(
    name for name in RveRNetImageProcessorKwargs.__annotations__ if name not in ("image_mean", "image_std")
)


class SegmenterPart:
    """The image processor's segmenter: its settings, saved under these flat names (their defaults written once, in
    `roi_masks_rvernet.SegmenterSettings`, which documents them), as that one object (`segmenter_settings`), and the
    segmenter itself, loaded in one place (`get_segmenter`) or given (`set_sam_model`). A part of
    `RveRNetImageProcessor`, which holds and saves these settings with its others."""

    # The segmenter's settings under their flat (saved) names; `segmenter_settings` gives them as one object, whose
    # class `SegmenterSettings` (roi_masks_rvernet.py) documents them and writes each default once.
    sam_model_name_or_path = _SEGMENTER_DEFAULTS["sam_model_name_or_path"]
    sam_revision = _SEGMENTER_DEFAULTS["sam_revision"]
    sam_device = _SEGMENTER_DEFAULTS["sam_device"]
    sam_dtype = _SEGMENTER_DEFAULTS["sam_dtype"]
    sam_batch_size = _SEGMENTER_DEFAULTS["sam_batch_size"]
    mask_threshold = _SEGMENTER_DEFAULTS["mask_threshold"]
    auto_roi = _SEGMENTER_DEFAULTS["auto_roi"]
    auto_roi_points_per_side = _SEGMENTER_DEFAULTS["auto_roi_points_per_side"]
    auto_roi_min_area = _SEGMENTER_DEFAULTS["auto_roi_min_area"]
    auto_roi_max_area = _SEGMENTER_DEFAULTS["auto_roi_max_area"]
    auto_roi_center_weight = _SEGMENTER_DEFAULTS["auto_roi_center_weight"]
    auto_roi_fallback_fraction = _SEGMENTER_DEFAULTS["auto_roi_fallback_fraction"]
    all_objects_points_per_side = _SEGMENTER_DEFAULTS["all_objects_points_per_side"]
    all_objects_points_per_batch = _SEGMENTER_DEFAULTS["all_objects_points_per_batch"]
    all_objects_pred_iou_threshold = _SEGMENTER_DEFAULTS["all_objects_pred_iou_threshold"]
    all_objects_stability_threshold = _SEGMENTER_DEFAULTS["all_objects_stability_threshold"]
    all_objects_nms_threshold = _SEGMENTER_DEFAULTS["all_objects_nms_threshold"]
    all_objects_min_area = _SEGMENTER_DEFAULTS["all_objects_min_area"]
    all_objects_max_area = _SEGMENTER_DEFAULTS["all_objects_max_area"]
    all_objects_max_regions = _SEGMENTER_DEFAULTS["all_objects_max_regions"]
    all_objects_strategy = _SEGMENTER_DEFAULTS["all_objects_strategy"]
    text_score_threshold = _SEGMENTER_DEFAULTS["text_score_threshold"]
    text_mask_threshold = _SEGMENTER_DEFAULTS["text_mask_threshold"]

    @property
    def segmenter_settings(self) -> SegmenterSettings:
        """The segmenter's settings (saved flat on the processor) as one object."""
        return SegmenterSettings.from_flat(self._merge_and_standardize_kwargs())

    def set_sam_model(self, sam_model: Any, sam_image_processor: Any = None) -> None:
        """Use an already-built promptable segmenter (any family of `segmenters_rvernet.SEGMENTER_FAMILIES`, for
        example a tiny random one in tests; SAM 3 with its `Sam3Processor`) instead of loading
        `sam_model_name_or_path`; refused if it is not one."""
        self._sam = segmenter_for(sam_model, sam_image_processor)

    def get_segmenter(self, settings: dict[str, Any] | None = None):
        """The segmenter: the one given with `sam_model`, else `sam_model_name_or_path` (of this call's `settings`,
        default the saved ones) loaded on first use (on `sam_device`, in `sam_dtype`) through
        `AutoModelForMaskGeneration` and shared across the process. The one place a segmenter is loaded."""
        if self._sam is not None:
            return self._sam
        found = SegmenterSettings.from_flat(settings or self._merge_and_standardize_kwargs())
        return load_segmenter(found.model_name_or_path, found.revision, found.device, found.dtype)


class RveRNetImageProcessor(SegmenterPart, TorchvisionBackend):
    r"""
    Turns photos into RveRNet's two inputs, `roi_pixel_values` and `context_pixel_values`.

    Per image, the ROI comes from one of: a mask (`roi_masks`), a box (`input_boxes`), one or more points
    (`input_points` + `input_labels`), a text prompt (`text`, SAM 3), every object (`all_objects=True`) or nothing
    (the automatic ROI). Several ROIs of one image give one sample each; `roi_image_index` maps samples back to
    images. Boxes and points are turned into masks by the segmenter, whose image embedding is computed once per image
    however many prompts it has, with images batched through it.

    Settings: `RveRNetImageProcessorKwargs` documents each (every one is saved in `preprocessor_config.json` and is
    also a per-call override); their defaults are the class attributes below. `set_settings(...)` changes saved
    ones, validated.

    Args:
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
    # The pixel settings.
    size = {"height": 224, "width": 224}
    resize_mode = "letterbox"
    resample = PILImageResampling.BILINEAR
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
    cut_before_resize = False
    patch_size = None
    token_keep_threshold = 0.0
    token_margin = 0

    def __init__(self, sam_model: Any = None, **kwargs: Any):
        _validate_types(
            self.valid_kwargs, {key: kwargs[key] for key in set(kwargs) & set(self.valid_kwargs.__annotations__)}
        )
        super().__init__(**_both_towers(unknown_settings(kwargs)))
        self._validate_preprocess_kwargs(**self._merge_and_standardize_kwargs())
        self._sam = None  # a segmenter the caller gave (set_sam_model), never serialised
        if sam_model is not None:
            self.set_sam_model(sam_model)

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs: Any):
        # A folder saved before `all_objects_strategy` existed decoded every grid point: it keeps doing so.
        return super().from_dict({"all_objects_strategy": "grid", **image_processor_dict}, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        return {key: value for key, value in output.items() if not key.startswith("_") and key != "image_mean"}

    @classmethod
    def from_towers_pretrained(
        cls, roi_model_name_or_path: str, context_model_name_or_path: str, revision: str | None = None, **kwargs
    ) -> "RveRNetImageProcessor":
        """A processor whose per-tower normalisation (and, unless given, output size) come from each tower's own
        image processor (Hub id or folder, at `revision`), as `RveRNetForImageClassification.from_towers_pretrained`
        pairs them."""
        settings = tower_settings(roi_model_name_or_path, context_model_name_or_path, revision)
        return cls(**{**settings, **kwargs})

    # ------------------------------------------------------------------------------------------- settings

    def _standardize_kwargs(self, **settings: Any) -> dict[str, Any]:
        """Each setting in its canonical (saved) type (see `canonical_settings`)."""
        return canonical_settings(settings)

    def _validate_preprocess_kwargs(self, **settings: Any) -> None:
        """Refuse, naming it, a setting this processor cannot use (see `check_settings`)."""
        check_settings(settings)

    def _call_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """One call's settings as `BaseImageProcessor.preprocess` makes them: typed against `valid_kwargs`, the
        saved settings merged under the given ones and standardised, then validated. The processor is not changed."""
        settings = _both_towers(_known_settings(settings))
        _validate_types(self.valid_kwargs, settings)
        settings = self._merge_and_standardize_kwargs(**settings)
        self._validate_preprocess_kwargs(**settings)
        return settings

    def set_settings(self, **settings: Any) -> "RveRNetImageProcessor":
        """Change saved settings in place (e.g. another segmenter, `sam_model_name_or_path="facebook/EdgeTAM"`, or
        the towers' `patch_size`), each validated as in the constructor: a refused value changes nothing. Pointing
        at another segmenter checkpoint drops one given with `sam_model`. Returns the processor."""
        merged = self._call_settings(settings)
        for name in _both_towers(settings):
            setattr(self, name, merged[name])
        if {"sam_model_name_or_path", "sam_revision"} & set(settings):
            self._sam = None
        return self

    # ------------------------------------------------------------------------------------------- cut-outs

    def make_cutouts(
        self, image: np.ndarray, mask: np.ndarray, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One RGB uint8 (H, W, 3) image and its bool (H, W) mask -> (roi, context, mask at the output size),
        computed on `device` (default CPU)."""
        return sample_cutouts(self._merge_and_standardize_kwargs(), to_chw_uint8(image).to(device), mask)

    def token_masks(self, canvas_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The patches each tower reads (see `patch_size`), from the ROI mask at the output size (`make_cutouts`'
        third result, or a stack of them): `{"roi_token_mask": (num_patches,) bool, "context_token_mask": ...}`
        (`(N, num_patches)` for a stack) for the towers with a patch size, empty when `patch_size` is not set."""
        return token_masks(self._merge_and_standardize_kwargs(), canvas_mask)

    def cutouts(
        self, arrays: list[np.ndarray], masks_per_image: list[list[np.ndarray]], device=None, **settings: Any
    ) -> dict[str, torch.Tensor]:
        """Decoded photos (RGB uint8) and, per photo, its bool ROI masks (checked already, e.g. by
        `compute_roi_masks`) -> the model inputs of one sample per (photo, mask), as `preprocess` returns them
        (tensors, with `roi_boxes`); settings may be overridden for this call."""
        return cutout_batch(self._call_settings(settings), arrays, masks_per_image, device, with_boxes=True)

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
        data = pair_batch(self._call_settings(settings), roi_images, context_images, input_data_format)
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
        prompts: RoiPrompt | list[RoiPrompt] | None = None,
        sam_model: Any = None,
        **settings: Any,
    ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
        """Read the images and find each one's ROI masks (given, from segmenter prompts, or automatic); no cut-outs.

        Everything is read and checked before the segmenter runs. Returns the RGB uint8 arrays and, per image, its
        list of bool masks at the original size. Arguments as in `preprocess`.
        """
        settings = self._call_settings(settings)
        prompt_arguments = (roi_masks, input_points, input_labels, input_boxes, text, all_objects)
        arrays, masks, _ = self._roi_masks(images, prompt_arguments, prompts, sam_model, input_data_format, settings)
        return arrays, masks

    def _roi_masks(self, images, prompt_arguments, prompts, sam_model, input_data_format, settings):
        batched = isinstance(images, (list, tuple))
        image_list = list(images) if batched else [images]
        if not image_list:
            raise ValueError("`images` is empty.")
        prompts = _prompts_per_image(len(image_list), batched, prompt_arguments, prompts)
        arrays, prompts = read_images(image_list, prompts, settings, input_data_format)
        given = segmenter_for(sam_model) if sam_model is not None else self._sam  # else loaded when needed
        name = settings["sam_model_name_or_path"] if given is None else type(given.model).__name__
        segmenter_settings = SegmenterSettings.from_flat(settings)
        masks = find_roi_masks(
            arrays, prompts, segmenter_settings, lambda: given or self.get_segmenter(settings), name
        )
        return arrays, masks, prompts

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
        prompts: RoiPrompt | list[RoiPrompt] | None = None,
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
            prompts (`RoiPrompt` or a list of them, one per image, *optional*): The prompts as one object each
                (`prompts_rvernet.RoiPrompt`, what the pipeline builds), instead of the arguments above.
            return_tensors (`str`, *optional*, defaults to `"pt"`): As in every transformers processor.
            return_roi_masks (`bool`, *optional*, defaults to `False`):
                Also return `roi_masks`: a list with the bool mask (original image size) used for each sample.
            sam_model (*optional*): Use this promptable segmenter (any supported family) for this call instead of
                loading `sam_model_name_or_path`.
            all_objects (`bool`, *optional*, defaults to `False`):
                Every object of each photo is a sample (`all_objects_*` settings), with its own mask and the rest of
                the photo as its context; the output also has `roi_boxes` (N, 4), each mask's extent `[x0, y0, x1,
                y1]` in pixels (x1, y1 exclusive).
            text (`str` or `list[str]`, *optional*):
                A concept ("food", "sauce"), for all images or one per image: every instance a SAM 3 segmenter finds
                (`text_*` settings) is a sample (the central box where none is, with a warning); `roi_boxes` too.
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

        Prompt nesting: for one image, the per-image forms above or SAM's batch nesting (`RoiPrompt.per_image`); for
        a list of images, one entry per image. Every prompt is checked (`RoiPrompt`) before any image is decoded.

        Returns:
            [`BatchFeature`] with `roi_pixel_values` and `context_pixel_values` (N, 3, H, W), `roi_image_index` (N,)
            (which input image each sample comes from), `roi_token_mask` / `context_token_mask` when `patch_size` is
            set and, on request, `roi_masks`.
        """
        if device is not None and settings.get("sam_device", self.sam_device) is None:
            settings["sam_device"] = str(device)  # SAM runs where the cut-outs are made unless told otherwise
        settings = _both_towers(_known_settings(settings))
        call = {
            "prompt_arguments": (roi_masks, input_points, input_labels, input_boxes, text, all_objects),
            "prompts": prompts,
            "sam_model": sam_model,
            "input_data_format": input_data_format,
            "device": device,
            "return_tensors": return_tensors,
            "return_roi_masks": return_roi_masks,
        }
        try:  # transformers' chain: typed check, the saved settings merged under these, validation, then the call
            return super().preprocess(images, image_like_kwargs=call, **settings)
        except StrictDataclassError as error:  # its typed check, reported as every bad setting is
            raise ValueError(f"RveRNetImageProcessor: {error}".replace("\n", " ")) from None

    def _preprocess_image_like_inputs(
        self, images, prompt_arguments, prompts, sam_model, input_data_format, device, **settings
    ) -> BatchFeature:
        """Read the photos and find their ROI masks (everything checked before the segmenter runs), then cut."""
        arrays, masks, prompts = self._roi_masks(
            images, prompt_arguments, prompts, sam_model, input_data_format, settings
        )
        with_boxes = any(prompt.finds_objects for prompt in prompts)
        return self._preprocess(arrays, masks, device=device, with_boxes=with_boxes, **settings)

    def _preprocess(
        self, images, masks_per_image, device, with_boxes, return_tensors, return_roi_masks, **settings
    ) -> BatchFeature:
        """One sample per (photo, mask): the cut-outs (`cutouts_rvernet.cutout_batch`) as a `BatchFeature`."""
        batch = cutout_batch(settings, images, masks_per_image, device, with_boxes)
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
    unknown = sorted(set(kwargs) - set(RveRNetImageProcessorKwargs.__annotations__) - _CONFIG_METADATA)
    if unknown:
        logger.warning(
            f"RveRNetImageProcessor: {unknown} are not settings of this processor and change nothing (misspelt? its "
            f"settings: {', '.join(SETTINGS)})."
        )
    return kwargs


def _known_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A call's settings, refused (naming them) when one is not a setting: per call nothing is kept silently."""
    unknown = sorted(set(settings) - set(RveRNetImageProcessorKwargs.__annotations__))
    if unknown:
        raise TypeError(
            f"Unexpected arguments for RveRNetImageProcessor: {unknown}. Per call it takes its settings "
            f"({', '.join(SETTINGS)}), `image_mean`/`image_std` (both towers), `input_data_format`, `device`, "
            "`sam_model`, `prompts`, `return_tensors` and `return_roi_masks`."
        )
    return settings


def _validate_types(schema: type, settings: dict[str, Any]) -> None:
    """transformers' typed check of the settings (`validate_typed_dict`), reported as a `ValueError` naming it. None
    is a value only for the settings typed `... | None` (`patch_size`, `sam_revision`, `sam_device`, the
    both-towers shorthands): for the others transformers reads None as "step not applied" at construction and as
    "the saved value" in a call, a guess this processor does not make (refused, naming the setting and its default)."""
    from huggingface_hub.dataclasses import validate_typed_dict

    hints = typing.get_type_hints(schema)
    for key, value in settings.items():
        if value is None and key in hints and type(None) not in typing.get_args(hints[key]):
            default = getattr(RveRNetImageProcessor, key, None)
            raise ValueError(
                f"RveRNetImageProcessor: `{key}` cannot be None (it has no 'unset' value); leave it out for its "
                f"default ({default!r}), or give a value."
            )
    try:
        validate_typed_dict(schema, {key: value for key, value in settings.items() if value is not None})
    except StrictDataclassError as error:
        raise ValueError(f"RveRNetImageProcessor: {error}".replace("\n", " ")) from None


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


def canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Each setting in its canonical (saved) type: `size` a `{"height", "width"}` dict of ints, means and stds
    lists of floats, `patch_size` `{"roi": p, "context": q}`, the segmenter's in `SegmenterSettings`' types; the
    both-towers shorthands (resolved before) dropped."""
    settings = {key: value for key, value in settings.items() if key not in ("image_mean", "image_std")}
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
    if settings.get("resample") is not None:  # PIL's numbering, saved as the number
        settings["resample"] = int(settings["resample"])
    for name in SegmenterSettings.flat_fields():
        if name in settings:
            settings[name] = SegmenterSettings.convert_flat(name, settings[name])
    return settings


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse, naming it, a setting the processor cannot use (the segmenter's are checked by its settings)."""
    if settings["resize_mode"] not in RESIZE_MODES:
        raise ValueError(f"`resize_mode` must be one of {RESIZE_MODES}, got {settings['resize_mode']!r}.")
    if settings["context_mode"] not in CONTEXT_MODES:
        raise ValueError(f"`context_mode` must be one of {CONTEXT_MODES}, got {settings['context_mode']!r}.")
    size = settings["size"]
    if set(size) != {"height", "width"} or min(size.values()) < 1:
        raise ValueError(f"`size` must be {{'height': H, 'width': W}} with positive H, W, got {size}.")
    for name in _TOWER_STATS:
        if len(settings[name]) != 3:
            raise ValueError(f"`{name}` must have 3 values (RGB), got {settings[name]}.")
    if settings["resample"] not in RESAMPLE_FILTERS:
        raise ValueError(
            f"`resample` must be PILImageResampling.BILINEAR (2) or BICUBIC (3), got {settings['resample']!r}."
        )
    if settings["cut_before_resize"] and (settings["cutout_style"] != "fill" or settings["fill_value"] != 0.0):
        raise ValueError(
            "`cut_before_resize=True` cuts at the photo's size, the hidden part black (the official code's order): it "
            f"goes with cutout_style='fill' and fill_value=0.0, got {settings['cutout_style']!r} and "
            f"{settings['fill_value']!r}."
        )
    for name in ("do_normalize", "do_convert_rgb", "cut_before_resize"):
        if not isinstance(settings[name], bool):
            raise ValueError(f"`{name}` must be True or False, got {settings[name]!r}.")
    if not 0 <= settings["pad_value"] <= 255:
        raise ValueError(f"`pad_value` must be a grey level in [0, 255], got {settings['pad_value']!r}.")
    if settings["cutout_style"] not in CUTOUT_STYLES:
        raise ValueError(f"`cutout_style` must be one of {CUTOUT_STYLES}, got {settings['cutout_style']!r}.")
    if not np.isfinite(settings["fill_value"]):
        raise ValueError(f"`fill_value` must be a finite number, got {settings['fill_value']!r}.")
    if settings["token_margin"] < 0:
        raise ValueError(f"`token_margin` must be >= 0 patches, got {settings['token_margin']}.")
    if not 0.0 <= settings["token_keep_threshold"] < 1.0:
        raise ValueError(f"`token_keep_threshold` must be in [0, 1), got {settings['token_keep_threshold']}.")
    for tower, patch in (settings["patch_size"] or {}).items():
        if patch is not None and (size["height"] % patch or size["width"] % patch):
            raise ValueError(
                f"`size` {size} is not a multiple of the {tower} tower's `patch_size` {patch}: its token grid would "
                "not cover the cut-out."
            )
    if any(value == 0 for value in (*settings["roi_image_std"], *settings["context_image_std"])):
        raise ValueError("`roi_image_std` and `context_image_std` must not contain 0 (it divides).")
    SegmenterSettings.from_flat(settings).validate()


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


def _prompts_per_image(count: int, batched: bool, prompt_arguments: tuple, prompts: Any) -> list[RoiPrompt]:
    """One `RoiPrompt` per image: the ones given (`prompts`), or made from SAM's argument names."""
    if prompts is None:
        return RoiPrompt.per_image(count, batched, *prompt_arguments)
    if any(value not in (None, False) for value in prompt_arguments):
        raise ValueError(
            "give the prompts either as `prompts` (RoiPrompt) or as roi_masks/input_points/..., not both."
        )
    prompts = list(prompts) if isinstance(prompts, (list, tuple)) else [prompts]
    # A RoiPrompt of another copy of this module counts too (the pipeline's remote code is loaded apart from ours).
    if len(prompts) != count or not all(type(prompt).__name__ == RoiPrompt.__name__ for prompt in prompts):
        raise ValueError(f"`prompts` must be one RoiPrompt per image ({count}), got {len(prompts)} item(s).")
    fields = ("masks", "points", "boxes", "text", "all_objects")
    return [RoiPrompt(**{name: getattr(p, name) for name in fields}, index=index) for index, p in enumerate(prompts)]


def read_images(
    image_list: list, prompts: list[RoiPrompt], settings: dict[str, Any], input_data_format
) -> tuple[list[np.ndarray], list[RoiPrompt]]:
    """Every image read (RGB uint8) and its prompt checked against it (`RoiPrompt.checked`), before any segmenter
    runs."""
    arrays, checked = [], []
    for index, (image, prompt) in enumerate(zip(image_list, prompts)):
        array = load_image(image, index, settings["pad_value"], input_data_format, settings["do_convert_rgb"])
        height, width = array.shape[:2]
        if height * width < 2:
            raise ValueError(
                f"{describe_image(index, image)} is {width}x{height}: too small for an ROI and a context (RveRNet "
                "needs both)."
            )
        arrays.append(array)
        checked.append(prompt.checked((height, width)))
    return arrays, checked


__all__ = ["RveRNetImageProcessor", "load_image", "load_mask", "normalize", "resize_to_canvas"]
