# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Evaluate a saved model (RveRNet or a single classifier) on an image folder with masks, batched, without Trainer:
used by `rvernet-hf demo`, `rvernet-hf evaluate` and the benchmarks. Optional robustness probes transform the photo
(and its mask) first; `evaluate_mask_perturbations` measures what a wrong mask costs (see `perturbations`)."""

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
    probe: str | Callable = "none",
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of `model` over `dataset` (rows with image, roi_mask, label) through `transform`. `probe`
    names one of `PROBES`, or is a function `(image, mask, index) -> (image, mask)` applied to each sample first."""
    if isinstance(probe, str) and probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; one of {sorted(PROBES)}.")
    change = probe if callable(probe) else None
    if isinstance(probe, str) and PROBES[probe] is not None:
        change = lambda image, mask, index: PROBES[probe](image, mask)  # noqa: E731
    model = model.to(device).eval()
    all_logits, all_labels = [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        if change is not None:
            images, masks = [], []
            for i, (image, mask) in enumerate(zip(rows["image"], rows["roi_mask"])):
                array = load_image(image, start + i)
                changed = change(array, load_mask(mask, start + i, array.shape[:2], allow_full=True), start + i)
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
    probe: str | Callable = "none",
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


def evaluate_mask_perturbations(
    model,
    transform: RveRNetTransform,
    dataset,
    perturbations: str | list = "none",
    ambiguous_labels=(),
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> list[dict]:
    """One row per mask perturbation (`perturbations.parse_perturbations` forms, e.g. `"none,erode:0.1,box"`): its
    metrics (`evaluate_model`'s) and `mean_iou`, the mean IoU of the perturbed masks to the given ones (1.0 for
    `none`). Each sample's perturbation is drawn from its own generator (`seed`, its index): the same whatever the
    batch size. Every perturbation is parsed before any sample is read."""
    from .perturbations import describe, mask_iou, parse_perturbations, perturb_mask, sample_rng

    parsed = parse_perturbations(perturbations) if isinstance(perturbations, str) else list(perturbations)
    rows = []
    for kind, strength in parsed:
        ious = []

        def perturbed(image, mask, index, kind=kind, strength=strength, ious=ious):
            try:
                changed = perturb_mask(mask, kind, strength, sample_rng(seed, index))
            except ValueError as error:
                raise ValueError(f"sample {index}: {error}") from None
            ious.append(mask_iou(mask, changed))
            return image, changed

        metrics = evaluate_model(model, transform, dataset, ambiguous_labels, batch_size, perturbed, device)
        rows.append({"perturbation": describe(kind, strength), "mean_iou": float(np.mean(ious)), **metrics})
    return rows


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
    "evaluate_mask_perturbations",
    "evaluate_model",
    "load_for_evaluation",
    "load_split",
    "patch_permutation",
    "predict_dataset",
    "translocation",
]
