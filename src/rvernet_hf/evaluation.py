# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Evaluate a saved model (RveRNet or a single classifier) on an image folder with masks, batched, without Trainer:
used by `rvernet-hf demo` and the benchmarks. Optional robustness probes transform the photo (and its mask) first."""

import os
from collections.abc import Callable

import numpy as np
import torch

from .data import MODEL_INPUTS, RveRNetTransform, load_image_folder_dataset, single_model_preprocessors
from .image_utils_rvernet import load_image, load_mask
from .labels import label2id_of, normalize_id2label
from .metrics import load_metric, resolve_label_ids


def patch_permutation(image: np.ndarray, mask: np.ndarray, patch: int = 16, seed: int = 0):
    """The paper's probe: cut the photo into `patch`-pixel squares and shuffle them (the mask moves with them)."""
    height, width = (image.shape[0] // patch) * patch, (image.shape[1] // patch) * patch
    if height == 0 or width == 0:
        raise ValueError(f"the image ({image.shape[0]}x{image.shape[1]}) is smaller than one {patch}-px patch.")
    rows, cols = height // patch, width // patch
    order = np.random.default_rng(seed).permutation(rows * cols)

    def shuffle(array):
        tiles = array[:height, :width].reshape(rows, patch, cols, patch, *array.shape[2:]).swapaxes(1, 2)
        tiles = tiles.reshape(rows * cols, patch, patch, *array.shape[2:])[order]
        return (
            tiles.reshape(rows, cols, patch, patch, *array.shape[2:])
            .swapaxes(1, 2)
            .reshape(array[:height, :width].shape)
        )

    return shuffle(image), shuffle(mask)


def translocation(image: np.ndarray, mask: np.ndarray, dx: int = 60, dy: int = 85, fill: int = 128):
    """The paper's probe: shift the photo by (dx, dy) pixels, filling the uncovered part with grey (mask shifted too).
    The shift is scaled to the image: (60, 85) are the paper's pixels at 224 px."""
    height, width = image.shape[:2]
    dx, dy = round(dx * width / 224), round(dy * height / 224)
    shifted = np.full_like(image, fill)
    shifted_mask = np.zeros_like(mask)
    shifted[dy:, dx:] = image[: height - dy, : width - dx]
    shifted_mask[dy:, dx:] = mask[: height - dy, : width - dx]
    if not shifted_mask.any():  # the ROI left the frame: keep its visible remainder empty -> use the original
        return shifted, mask
    return shifted, shifted_mask


PROBES: dict[str, Callable | None] = {
    "none": None,
    "patch_permutation": patch_permutation,
    "translocation": translocation,
}


@torch.no_grad()
def predict_dataset(
    model,
    transform: RveRNetTransform,
    dataset,
    batch_size: int = 32,
    probe: str = "none",
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of `model` over `dataset` (rows with image, roi_mask, label) through `transform`."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; one of {sorted(PROBES)}.")
    model = model.to(device).eval()
    all_logits, all_labels = [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        if PROBES[probe] is not None:
            images, masks = [], []
            for i, (image, mask) in enumerate(zip(rows["image"], rows["roi_mask"])):
                array = load_image(image, start + i)
                changed = PROBES[probe](array, load_mask(mask, start + i, array.shape[:2], allow_full=True))
                images.append(changed[0])
                masks.append(changed[1])
            rows = {**rows, "image": images, "roi_mask": masks}
        batch = transform(rows)
        labels = batch.pop("labels")
        batch = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        all_logits.append(model(**batch).logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits).numpy(), torch.cat(all_labels).numpy()


def evaluate_model(
    model,
    transform: RveRNetTransform,
    dataset,
    ambiguous_labels=(),
    batch_size: int = 32,
    probe: str = "none",
    device: str | torch.device = "cpu",
) -> dict:
    """accuracy, macro_f1, ambiguous_f1 (+ per_class and confusion_matrix) of `model` on `dataset`."""
    logits, labels = predict_dataset(model, transform, dataset, batch_size, probe, device)
    id2label = normalize_id2label(model.config.id2label)
    ambiguous = resolve_label_ids(ambiguous_labels, label2id_of(id2label))
    return load_metric().compute(
        predictions=logits.argmax(-1),
        references=labels,
        num_labels=len(id2label),
        ambiguous_labels=ambiguous or None,
        label_names=[id2label[i] for i in range(len(id2label))],
    )


def load_for_evaluation(model_dir: str | os.PathLike, single_view: str | None = None):
    """`(model, eval transform)` for a folder written by `rvernet-hf train` (RveRNet or `--model_type single`)."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from .teachers import preprocessing_for

    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    if getattr(model.config, "model_type", None) == "rvernet":
        return model, RveRNetTransform(AutoImageProcessor.from_pretrained(model_dir))
    facts = preprocessing_for(model, str(model_dir))
    cutouts, full_image = single_model_preprocessors(facts)
    view = single_view or getattr(model.config, "rvernet_single_view", "full_image")
    return model, RveRNetTransform(cutouts, single_view=view, single_processor=full_image)


def load_split(data_dir: str | os.PathLike, split: str):
    """A split of the built-in benchmark (or any `<split>/` + `<split>_masks/` image folder pair)."""
    return load_image_folder_dataset(os.path.join(data_dir, split), os.path.join(data_dir, f"{split}_masks"))


__all__ = [
    "PROBES",
    "evaluate_model",
    "load_for_evaluation",
    "load_split",
    "patch_permutation",
    "predict_dataset",
    "translocation",
]
