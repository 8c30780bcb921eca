# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Training data, in three modules by concern. Needs the `train` extra (`datasets`). Not uploaded with the weights.

- `rvernet_hf.data.sources`: dataset builders (image folders, segmentation label maps incl. the public food
  datasets' schemas, the FoodSeg103 folder layout, the official paired layout), all in one schema: `image`,
  `label` (`ClassLabel`), `roi_mask` (1-bit PNG) and the optional prompt columns `roi_box` / `roi_points`.
- `rvernet_hf.data.mask_cache`: every sample read and checked once, missing masks made by SAM once (and a teacher's
  logits, from the same decoded photo), in resumable shards split across processes (`precompute_roi_masks`).
- `rvernet_hf.data.transforms`: rows -> model inputs, with paired augmentations (`RveRNetTransform`).

Every public name is importable from `rvernet_hf.data` as well.
"""

from .mask_cache import MaskingReport, precompute_roi_masks
from .sources import (
    IMAGE_EXTENSIONS,
    LABEL_CHANNELS,
    encode_mask,
    label_map_array,
    load_foodseg103_folder,
    load_image_folder_dataset,
    load_paired_folder_dataset,
    segmentation_to_roi_dataset,
)
from .transforms import (
    MODEL_INPUTS,
    SINGLE_VIEWS,
    TEACHER_INPUTS,
    DecodedCache,
    FullImagePreprocessor,
    PairedTransform,
    RveRNetTransform,
    add_sample_index,
    augmentation_epoch_callback,
    single_model_preprocessors,
)


__all__ = [
    "IMAGE_EXTENSIONS",
    "LABEL_CHANNELS",
    "MODEL_INPUTS",
    "SINGLE_VIEWS",
    "TEACHER_INPUTS",
    "DecodedCache",
    "FullImagePreprocessor",
    "MaskingReport",
    "PairedTransform",
    "RveRNetTransform",
    "add_sample_index",
    "augmentation_epoch_callback",
    "encode_mask",
    "label_map_array",
    "load_foodseg103_folder",
    "load_image_folder_dataset",
    "load_paired_folder_dataset",
    "precompute_roi_masks",
    "segmentation_to_roi_dataset",
    "single_model_preprocessors",
]
