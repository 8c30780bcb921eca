# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Evaluate a saved model (RveRNet or a single classifier) on an image folder with masks, batched, without Trainer:
used by `rvernet-hf demo`, `rvernet-hf evaluate` and the benchmarks. Optional robustness probes transform the photo
(and its mask) first; `evaluate_mask_perturbations` measures what a wrong mask costs (see `perturbations`)."""

import os
from collections.abc import Callable

import numpy as np
import torch

from .data import (
    MODEL_INPUTS,
    RveRNetTransform,
    label_map_array,
    load_image_folder_dataset,
    single_model_preprocessors,
)
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
    """accuracy, macro_f1, ambiguous_f1 (+ per_class and confusion_matrix) of `model` on `dataset`. The dataset's
    labels are matched to the model's by name (`align_labels`), so a test folder that lacks a class, or lists its
    classes in another order, is scored right."""
    id2label = normalize_id2label(model.config.id2label)
    dataset = align_labels(dataset, id2label)
    logits, labels = predict_dataset(model, transform, dataset, batch_size, probe, device)
    ambiguous = resolve_label_ids(ambiguous_labels, label2id_of(id2label))
    return load_metric().compute(
        predictions=logits.argmax(-1),
        references=labels,
        num_labels=len(id2label),
        ambiguous_labels=ambiguous or None,
        label_names=[id2label[i] for i in range(len(id2label))],
    )


def align_labels(dataset, id2label: dict[int, str]):
    """`dataset` with its label ids turned into the model's (`id2label`), matched by name: its ClassLabel names (an
    image folder's are its sorted class folders) or its label strings. A label the model lacks is refused, naming
    it; a class the model has and the dataset lacks is fine (it is not scored)."""
    import datasets

    feature = dataset.features["label"]
    names = feature.names if isinstance(feature, datasets.ClassLabel) else sorted(set(dataset["label"]))
    label2id = {name: index for index, name in id2label.items()}
    unknown = [name for name in names if name not in label2id]
    if unknown:
        raise ValueError(
            f"the dataset's label(s) {unknown[:10]} are not the model's (its labels: {list(id2label.values())[:10]}"
            f"{' ...' if len(id2label) > 10 else ''}): evaluate on data with the model's label names."
        )
    model_names = [id2label[index] for index in range(len(id2label))]
    if isinstance(feature, datasets.ClassLabel) and names == model_names:
        return dataset
    to_model = {position: label2id[name] for position, name in enumerate(names)}
    if not isinstance(feature, datasets.ClassLabel):
        to_model = {name: label2id[name] for name in names}
    return dataset.map(
        lambda batch: {"label": [to_model[label] for label in batch["label"]]},
        batched=True,
        features=datasets.Features({**dataset.features, "label": datasets.ClassLabel(names=model_names)}),
        desc="Labels as the model numbers them",
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
    metrics (`evaluate_model`'s), `mean_iou`, the mean IoU of the perturbed masks to the given ones (1.0 for `none`),
    and `samples`, how many samples it read. Each sample's perturbation is drawn from its own generator (`seed`, its
    index): the same whatever the batch size. Every perturbation is parsed before any sample is read.

    `other` (another object's mask) reads the photo's other objects: the other samples of the same photo
    (`source_index`, as a segmentation dataset has) or an `object_masks` instance-map column (as `load_split` reads
    the built-in benchmark's). Its row covers the samples whose photo has one (`samples` says how many)."""
    from .perturbations import NEEDS_OTHER_OBJECTS, describe, mask_iou, parse_perturbations, perturb_mask, sample_rng

    parsed = parse_perturbations(perturbations) if isinstance(perturbations, str) else list(perturbations)
    dataset = align_labels(dataset, normalize_id2label(model.config.id2label))  # once, not once per row
    others = None
    if any(kind in NEEDS_OTHER_OBJECTS for kind, _ in parsed):
        others = other_object_masks(dataset)  # refused here, before any model runs, when the data has none
    check_perturbations_apply(dataset, parsed, seed, others)
    rows = []
    for kind, strength in parsed:
        ious = []
        kept = list(range(len(dataset)))
        if kind in NEEDS_OTHER_OBJECTS:
            kept = [index for index in kept if others[index]]
            if not kept:
                raise ValueError(f"mask perturbation {kind}: no sample of the {len(dataset)} has another object.")

        def perturbed(image, mask, index, kind=kind, strength=strength, ious=ious, kept=kept):
            index = kept[index]  # the sample's index in `dataset`: its generator and its other objects
            try:
                changed = perturb_mask(mask, kind, strength, sample_rng(seed, index), others and others[index])
            except ValueError as error:
                raise ValueError(f"sample {index}: {error}") from None
            ious.append(mask_iou(mask, changed))
            return image, changed

        subset = dataset if len(kept) == len(dataset) else dataset.select(kept)
        if kind == "none":  # the masks as given (or none, for a full-image classifier): nothing to draw or read
            metrics, ious = (
                evaluate_model(model, transform, subset, ambiguous_labels, batch_size, "none", device),
                [1.0],
            )
        else:
            metrics = evaluate_model(model, transform, subset, ambiguous_labels, batch_size, perturbed, device)
        name = describe(kind, strength)
        rows.append({"perturbation": name, "mean_iou": float(np.mean(ious)), "samples": len(kept), **metrics})
    return rows


def check_perturbations_apply(dataset, parsed: list, seed: int, others=None) -> None:
    """Every perturbation drawn on every sample's mask, as its row will draw it, before the first row: one that
    cannot apply (it would empty a mask, or cover the whole photo) is refused naming the sample and its file, before
    the model reads anything. Only the mask column is decoded here."""
    from .perturbations import NEEDS_OTHER_OBJECTS, describe, perturb_mask, sample_rng

    checked = [(kind, strength) for kind, strength in parsed if kind != "none"]
    if not checked or "roi_mask" not in dataset.column_names:
        return
    masks = dataset.select_columns(["roi_mask"])
    for index in range(len(dataset)):
        raw = masks[index]["roi_mask"]
        if raw is None:
            continue
        shape = raw.size[::-1] if hasattr(raw, "size") and not hasattr(raw, "shape") else np.asarray(raw).shape[:2]
        mask = load_mask(raw, index, tuple(shape), allow_full=True)
        for kind, strength in checked:
            if kind in NEEDS_OTHER_OBJECTS and not (others and others[index]):
                continue  # that row leaves such samples out
            try:
                perturb_mask(mask, kind, strength, sample_rng(seed, index), others and others[index])
            except ValueError as error:
                raise ValueError(
                    f"mask perturbation {describe(kind, strength)} cannot apply to sample {index} "
                    f"({_sample_name(dataset, index)}): {error}"
                ) from None


def _sample_name(dataset, index: int) -> str:
    """The file a sample's photo came from, when the dataset knows it."""
    import datasets

    if "image" not in dataset.column_names:
        return "no file name"
    cell = (
        dataset.cast_column("image", datasets.Image(decode=False))[index]["image"]
        if isinstance(dataset.features.get("image"), datasets.Image)
        else dataset[index]["image"]
    )
    path = cell.get("path") if isinstance(cell, dict) else getattr(cell, "filename", None)
    return path or "an image without a file name"


def other_object_masks(dataset) -> list[list[np.ndarray]]:
    """Per sample, the masks of the other objects of its photo that can stand for a wrong ROI
    (`perturbations.other_objects`): from `source_index` (the other samples of the same photo) or an `object_masks`
    column (instance maps: 0 = none, k = the k-th object). Refused, naming what is missing, when it has neither."""
    from .perturbations import other_objects

    columns = dataset.column_names
    if "source_index" not in columns and "object_masks" not in columns:
        raise ValueError(
            "mask perturbation 'other' needs each photo's other objects: a segmentation dataset (several samples "
            "per photo, a source_index column) or an object_masks column of instance maps (the built-in benchmark "
            f"writes <split>_object_masks/; give --object_masks_dir). This dataset has only {columns}."
        )
    masks = [
        None if mask is None else load_mask(mask, index, (mask.height, mask.width), allow_full=True)
        for index, mask in enumerate(dataset["roi_mask"])
    ]
    found = []
    if "source_index" in columns:
        photos: dict[int, list[int]] = {}
        for index, photo in enumerate(dataset["source_index"]):
            photos.setdefault(photo, []).append(index)
        for index, photo in enumerate(dataset["source_index"]):
            group = [masks[other] for other in photos[photo] if other != index and masks[other] is not None]
            found.append(other_objects(masks[index], group) if masks[index] is not None else [])
        return found
    for index, instance_map in enumerate(dataset["object_masks"]):
        if instance_map is None or masks[index] is None:
            found.append([])
            continue
        objects = label_map_array(instance_map, index)
        if objects.shape != masks[index].shape:
            raise ValueError(
                f"sample {index}: its object_masks map is {objects.shape}, its ROI mask {masks[index].shape}: it must "
                "be of the photo's size."
            )
        found.append(other_objects(masks[index], [objects == k for k in np.unique(objects) if k != 0]))
    return found


def load_for_evaluation(model_dir: str | os.PathLike, single_view: str | None = None, revision: str | None = None):
    """`(model, eval transform)` for a folder written by `rvernet-hf train` (RveRNet or `--model_type single`), or a
    Hub id at `revision`."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from .teachers import preprocessing_for

    model = AutoModelForImageClassification.from_pretrained(model_dir, revision=revision).eval()
    if getattr(model.config, "model_type", None) == "rvernet":
        return model, RveRNetTransform(AutoImageProcessor.from_pretrained(model_dir, revision=revision))
    facts = preprocessing_for(model, str(model_dir))
    cutouts, full_image = single_model_preprocessors(facts)
    view = single_view or getattr(model.config, "rvernet_single_view", "full_image")
    return model, RveRNetTransform(cutouts, single_view=view, single_processor=full_image)


def load_split(data_dir: str | os.PathLike, split: str):
    """A split of the built-in benchmark (or any `<split>/` + `<split>_masks/` image folder pair), with the other
    objects' instance maps as an `object_masks` column when `<split>_object_masks/` exists."""
    dataset = load_image_folder_dataset(os.path.join(data_dir, split), os.path.join(data_dir, f"{split}_masks"))
    objects_dir = os.path.join(data_dir, f"{split}_object_masks")
    return with_object_masks(dataset, objects_dir) if os.path.isdir(objects_dir) else dataset


def load_evaluation_data(
    data_dir=None,
    masks_dir=None,
    object_masks_dir=None,
    dataset_name=None,
    split: str = "test",
    **dataset_options,
):
    """The samples `rvernet-hf evaluate` reads: an image folder (`data_dir`, its `masks_dir`, its other objects'
    `object_masks_dir`), or the `split` of a dataset (`dataset_name`: a Hub id or a `save_to_disk` folder, read as
    `rvernet-hf train` reads it; `dataset_options` are `DataArguments` fields such as `data_layout`,
    `label_channel`, `id2label_file`, `label_column`; a segmentation dataset gives one sample per (photo, class),
    whose other samples are the 'other' perturbation's objects)."""
    if (data_dir is None) == (dataset_name is None):
        raise ValueError("give exactly one of data_dir (an image folder) and dataset_name (a dataset).")
    if data_dir is not None:
        dataset = load_image_folder_dataset(data_dir, masks_dir)
        return with_object_masks(dataset, object_masks_dir) if object_masks_dir else dataset
    from .training.arguments import DataArguments
    from .training.splits import hub_splits, load_hub_dataset

    data_args = DataArguments(dataset_name=str(dataset_name), **dataset_options)
    if data_args.data_layout not in ("auto", "hub", "segmentation"):
        raise ValueError(f"data_layout {data_args.data_layout!r}: a dataset is read as auto, hub or segmentation.")
    splits, _ = hub_splits(load_hub_dataset(data_args), {split: split}, data_args)
    return splits[split]


def with_object_masks(dataset, objects_dir: str | os.PathLike):
    """`dataset` (an image folder's) with an `object_masks` column: `<objects_dir>/<class>/<image stem>.png`, the
    instance map of each photo's other objects (None where there is no file)."""
    import datasets

    names = dataset.features["label"].names
    cells = []
    for cell, label in zip(dataset.cast_column("image", datasets.Image(decode=False))["image"], dataset["label"]):
        path = os.path.join(objects_dir, names[label], os.path.splitext(os.path.basename(cell["path"]))[0] + ".png")
        cells.append({"bytes": None, "path": path} if os.path.exists(path) else None)
    return dataset.add_column("object_masks", cells, feature=datasets.Image())


__all__ = [
    "PROBES",
    "align_labels",
    "evaluate_mask_perturbations",
    "evaluate_model",
    "load_evaluation_data",
    "load_for_evaluation",
    "load_split",
    "other_object_masks",
    "patch_permutation",
    "predict_dataset",
    "translocation",
    "with_object_masks",
]
