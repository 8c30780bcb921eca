# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Training data: dataset builders, SAM mask pre-computation, and paired augmentations.

Needs the `train` extra (`datasets`). Not uploaded with the weights.

Every builder returns a `datasets.Dataset` with an `image` column (or `roi_image` + `context_image` for the paired
layout), a `label` `ClassLabel` column, and, when masks are known, a `roi_mask` column (PNG bytes, decoded as
PIL images). Optional prompt columns: `roi_box` ([x0, y0, x1, y1]) and `roi_points` ([[x, y], ...]).
"""

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image_processing_rvernet import RveRNetImageProcessor, load_image, load_mask, normalize, resize_to_canvas


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _datasets():
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("This needs the `train` extra: pip install 'rvernet-hf[train]'") from error
    return datasets


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A bool mask as a 1-bit PNG (compact, lossless), in the form of a `datasets.Image` cell."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buffer, format="PNG", optimize=True)
    return {"bytes": buffer.getvalue(), "path": None}


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


# ----------------------------------------------------------------------------------------------- builders


def load_image_folder_dataset(
    data_dir: str | os.PathLike, masks_dir: str | os.PathLike | None = None, require_masks: bool = False
):
    """An image folder (`data_dir/<class>/<image>`, as `datasets`' imagefolder) as a `datasets.Dataset`.

    Args:
        data_dir: one subfolder per class. An optional `metadata.jsonl` at its top holds one JSON object per image,
            `{"file_name": "<class>/<image>", "roi_box": [x0, y0, x1, y1]}` or `"roi_points": [[x, y], ...]`.
        masks_dir: an optional parallel tree `masks_dir/<class>/<image stem>.png` of binary ROI masks.
        require_masks: raise if an image has no mask (otherwise its `roi_mask` is None and SAM will make one).
    """
    datasets = _datasets()
    root = Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"data_dir {root} is not a folder.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"data_dir {root} has no class subfolders (expected {root}/<class>/<image>).")
    metadata: dict[str, dict] = {}
    metadata_file = root / "metadata.jsonl"
    if metadata_file.exists():
        for line_number, line in enumerate(metadata_file.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    entry = json.loads(line)
                    metadata[entry["file_name"]] = entry
                except (json.JSONDecodeError, KeyError) as error:
                    message = f"{metadata_file} line {line_number} is not a JSON object with file_name: {error}"
                    raise ValueError(message) from None
    rows: dict[str, list] = {"image": [], "label": [], "roi_mask": [], "roi_box": [], "roi_points": []}
    for label, name in enumerate(classes):
        for path in _list_images(root / name):
            relative = f"{name}/{path.name}"
            mask = None
            if masks_dir is not None:
                mask_path = Path(masks_dir) / name / f"{path.stem}.png"
                if mask_path.exists():
                    mask = {"bytes": None, "path": str(mask_path)}
                elif require_masks:
                    raise ValueError(f"no mask for image {path}: expected {mask_path}.")
            entry = metadata.get(relative, {})
            rows["image"].append(str(path))
            rows["label"].append(label)
            rows["roi_mask"].append(mask)
            rows["roi_box"].append(entry.get("roi_box"))
            rows["roi_points"].append(entry.get("roi_points"))
    if not rows["image"]:
        raise ValueError(f"data_dir {root} holds no images with extensions {IMAGE_EXTENSIONS}.")
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=classes),
            "roi_mask": datasets.Image(),
            "roi_box": datasets.Sequence(datasets.Value("float32")),
            "roi_points": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
        }
    )
    return datasets.Dataset.from_dict(rows, features=features)


LABEL_CHANNELS = ("auto", "red", "green", "blue")


def label_map_array(label_map: Any, index: int, label_channel: str = "auto") -> np.ndarray:
    """A label-map image (PIL, array) -> (H, W) integer class ids.

    `label_channel="auto"`: a single-channel map as it is, an RGB(A) map whose three colour channels are equal as
    one of them; an RGB map whose channels differ is refused (it is not a label map unless one channel holds the
    ids: UECFoodPix keeps them in the red channel, `label_channel="red"`).
    """
    if isinstance(label_map, Image.Image) and label_map.mode == "P":
        label_map = np.asarray(label_map)  # palette indices are the ids
    array = np.asarray(label_map)
    if array.ndim == 2:
        return array
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"the label map of sample {index} has shape {array.shape}: expected (H, W) or (H, W, 3).")
    if label_channel != "auto":
        return array[..., ("red", "green", "blue").index(label_channel)]
    if (array[..., 1] == array[..., 0]).all() and (array[..., 2] == array[..., 0]).all():
        return array[..., 0]
    raise ValueError(
        f"the label map of sample {index} is a colour image whose channels differ: not a label map as it is. If one "
        "channel holds the class ids, name it: label_channel='red' (--label_channel red; UECFoodPix Complete keeps "
        "the class id in the red channel)."
    )


def segmentation_to_roi_dataset(
    dataset,
    id2label: dict[int, str],
    image_column: str = "image",
    label_map_column: str = "label",
    min_area: float = 0.01,
    ignore_ids: Sequence[int] = (0, 255),
    num_proc: int | None = None,
    classes_column: str | None = "classes_on_image",
    label_channel: str = "auto",
):
    """A semantic-segmentation dataset (image + label map, FoodSeg103 style) -> one sample per (image, class present).

    This is how the paper built ~18k samples from ~5k FoodSeg103 images. A class counts as present when its pixels
    cover at least `min_area` of the image. Classes in `ignore_ids` (background, void) are skipped. The new label
    space keeps `id2label`'s order without the ignored ids. Columns: image, label, roi_mask, source_index.

    Args:
        classes_column: a column listing each image's class ids (FoodSeg103 on the Hub: `classes_on_image`), used
            when present so that each label map is read once, for the masks of those classes only.
        label_channel: which channel of a colour label map holds the ids (see `label_map_array`).

    A label map with a class id that `id2label` lacks, of another size than its image, or in colour without a
    `label_channel` is refused, naming the sample.
    """
    datasets = _datasets()
    if label_channel not in LABEL_CHANNELS:
        raise ValueError(f"`label_channel` must be one of {LABEL_CHANNELS}, got {label_channel!r}.")
    kept = [i for i in sorted(id2label) if i not in set(ignore_ids)]
    new_id = {old: new for new, old in enumerate(kept)}
    for column in (image_column, label_map_column):
        if column not in dataset.column_names:
            raise ValueError(f"the segmentation dataset has no column {column!r} (columns: {dataset.column_names}).")
    listed = classes_column if classes_column and classes_column in dataset.column_names else None
    known = set(id2label) | set(ignore_ids)

    def explode(batch, indices):
        out = {"image": [], "label": [], "roi_mask": [], "source_index": []}
        classes = batch[listed] if listed else [None] * len(indices)
        for image, label_map, index, present in zip(batch[image_column], batch[label_map_column], indices, classes):
            label_map = label_map_array(label_map, index, label_channel)
            image_size = image.size[::-1] if isinstance(image, Image.Image) else np.asarray(image).shape[:2]
            if tuple(label_map.shape) != tuple(image_size):
                raise ValueError(
                    f"the label map of sample {index} is {label_map.shape} but its image is {tuple(image_size)}."
                )
            if present is None:
                ids, counts = np.unique(label_map, return_counts=True)
                found = dict(zip(ids.tolist(), counts.tolist()))
            else:
                found = {int(class_id): None for class_id in present}
            unknown = sorted(set(found) - known)
            if unknown:
                raise ValueError(
                    f"the label map of sample {index} holds class id(s) {unknown[:10]} that id2label lacks "
                    f"(ids 0..{max(id2label)}): wrong id2label, or the wrong label channel."
                )
            for class_id, count in found.items():
                if class_id not in new_id:
                    continue
                mask = label_map == class_id
                if (count if count is not None else int(mask.sum())) < min_area * label_map.size:
                    continue
                out["image"].append(image)
                out["label"].append(new_id[class_id])
                out["roi_mask"].append(encode_mask(mask))
                out["source_index"].append(index)
        return out

    features = datasets.Features(
        {
            "image": dataset.features[image_column]
            if isinstance(dataset.features[image_column], datasets.Image)
            else datasets.Image(),
            "label": datasets.ClassLabel(names=[id2label[i] for i in kept]),
            "roi_mask": datasets.Image(),
            "source_index": datasets.Value("int64"),
        }
    )
    return dataset.map(
        explode,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        features=features,
        num_proc=num_proc,
        desc="One sample per (image, class)",
    )


def load_foodseg103_folder(root: str | os.PathLike, split: str = "train"):
    """FoodSeg103 as distributed (`Images/img_dir/<split>/*.jpg`, `Images/ann_dir/<split>/*.png` label maps,
    `category_id.txt` with one `<id> <name>` per line) -> `(Dataset(image, label), id2label)`, ready for
    `segmentation_to_roi_dataset` (the paper's ~18k samples from ~5k images)."""
    datasets = _datasets()
    base = Path(root)
    images_dir, labels_dir = base / "Images" / "img_dir" / split, base / "Images" / "ann_dir" / split
    categories = base / "category_id.txt"
    for needed in (images_dir, labels_dir, categories):
        if not needed.exists():
            raise ValueError(f"{needed} is missing: expected the FoodSeg103 layout under {base}.")
    id2label = {}
    for line_number, line in enumerate(categories.read_text().splitlines(), start=1):
        if line.strip():
            parts = line.split(None, 1)
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{categories} line {line_number} is not '<id> <name>': {line!r}.")
            id2label[int(parts[0])] = parts[1].strip()
    rows: dict[str, list] = {"image": [], "label": []}
    for image_path in _list_images(images_dir):
        label_path = labels_dir / f"{image_path.stem}.png"
        if not label_path.exists():
            raise ValueError(f"{image_path} has no label map: expected {label_path}.")
        rows["image"].append(str(image_path))
        rows["label"].append(str(label_path))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Image()})
    return datasets.Dataset.from_dict(rows, features=features), id2label


def load_paired_folder_dataset(root: str | os.PathLike, split: str = "train", on_missing: str = "raise"):
    """The official code's layout, as it is: `root/split/roi/<class>/<name>` + `root/split/extra-roi/<class>/<name>`,
    paired by file name. Columns: roi_image, context_image, label. `on_missing="skip"` drops unpaired files (and
    logs how many and which); `"raise"` names the first one."""
    datasets = _datasets()
    base = Path(root) / split
    roi_root, context_root = base / "roi", base / "extra-roi"
    for folder in (roi_root, context_root):
        if not folder.is_dir():
            raise ValueError(f"{folder} is missing: the paired layout needs {base}/roi and {base}/extra-roi.")
    classes = sorted(p.name for p in roi_root.iterdir() if p.is_dir())
    rows: dict[str, list] = {"roi_image": [], "context_image": [], "label": []}
    unpaired = []
    for label, name in enumerate(classes):
        for path in _list_images(roi_root / name):
            partner = context_root / name / path.name
            if not partner.exists():
                if on_missing == "raise":
                    raise ValueError(f"{path} has no context partner: expected {partner}.")
                unpaired.append(str(path))
                continue
            rows["roi_image"].append(str(path))
            rows["context_image"].append(str(partner))
            rows["label"].append(label)
    if unpaired:
        from transformers.utils import logging

        logging.get_logger(__name__).warning(f"Skipped {len(unpaired)} unpaired ROI images: {unpaired[:10]}")
    features = datasets.Features(
        {"roi_image": datasets.Image(), "context_image": datasets.Image(), "label": datasets.ClassLabel(names=classes)}
    )
    return datasets.Dataset.from_dict(rows, features=features)


# ----------------------------------------------------------------------------------------------- SAM masks


def _settings_fingerprint(processor: RveRNetImageProcessor, *parts: Any) -> str:
    sam_settings = {k: v for k, v in processor.to_dict().items() if k.startswith(("sam_", "auto_roi", "mask_"))}
    return hashlib.sha256(json.dumps([sam_settings, *parts], sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class MaskingReport:
    """What `precompute_roi_masks` did: samples it skipped (index, name, reason), the shards this process computed
    and those it found already written, and which process of how many it was."""

    skipped: list[dict] = field(default_factory=list)
    shards_computed: int = 0
    shards_reused: int = 0
    process_index: int = 0
    num_processes: int = 1


def _process_group() -> tuple[int, int, Any]:
    """(rank, world size, barrier) of the running `torch.distributed` group (`torchrun`, `accelerate launch`, a
    multi-process Trainer), or (0, 1, no-op) for a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size(), dist.barrier
    return 0, 1, lambda: None


def precompute_roi_masks(
    dataset,
    processor: RveRNetImageProcessor,
    image_column: str = "image",
    mask_column: str = "roi_mask",
    box_column: str | None = "roi_box",
    points_column: str | None = "roi_points",
    batch_size: int = 8,
    shard_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
    on_error: str = "raise",
    sam_model: Any = None,
):
    """Run SAM over a `datasets.Dataset` once and store each sample's ROI mask (1-bit PNG) in `mask_column`.

    Samples that already have a mask keep it. Boxes/points in `box_column`/`points_column` prompt SAM; a sample with
    neither gets the processor's automatic ROI. Work is done in shards of `shard_size` samples, each a batched
    `map` written to its own cache file named by the dataset's fingerprint and the SAM settings: an interrupted run
    resumes at the first unfinished shard, and a second run (and every training epoch after it) performs no SAM
    forward pass at all.

    Args:
        on_error: `"raise"` stops at the first bad sample, naming it; `"skip"` drops bad samples and reports them
            (count and names) in the returned `MaskingReport`. Finished shards are kept either way.

    Returns:
        `(dataset with mask_column filled, MaskingReport)`.
    """
    datasets = _datasets()
    if on_error not in ("raise", "skip"):
        raise ValueError(f"`on_error` must be 'raise' or 'skip', got {on_error!r}.")
    if image_column not in dataset.column_names:
        raise ValueError(f"the dataset has no image column {image_column!r} (columns: {dataset.column_names}).")
    if sam_model is not None:
        processor.set_sam_model(sam_model)
    if cache_dir is None:
        if dataset.cache_files:
            cache_dir = Path(dataset.cache_files[0]["filename"]).parent / "rvernet_roi_masks"
        else:
            cache_dir = Path(datasets.config.HF_DATASETS_CACHE) / "rvernet_roi_masks"
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _settings_fingerprint(processor, dataset._fingerprint, image_column, box_column, points_column)
    report = MaskingReport()
    # Images (and existing masks) are read by the processor, not decoded by `datasets`: a broken file then becomes
    # a named error of one sample instead of an exception deep inside `map`.
    image_feature = dataset.features[image_column]
    dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    if mask_column in dataset.column_names:
        dataset = dataset.cast_column(mask_column, datasets.Image(decode=False))
    names = [(p or {}).get("path") for p in dataset[image_column]]

    def add_masks(batch, indices):
        masks, errors = [], []
        existing = batch.get(mask_column) or [None] * len(indices)
        boxes = batch.get(box_column) if box_column else None
        points = batch.get(points_column) if points_column else None
        results: dict[int, Any] = {}
        # Check every sample alone first (cheap: one decode), so that a bad file is named now rather than found
        # hours into training, and one bad sample does not take its batch down. Given masks are checked too.
        good, decoded = [], {}
        for i, given_mask in enumerate(existing):
            try:
                array = load_image(
                    batch[image_column][i], indices[i], processor.pad_value, do_convert_rgb=processor.do_convert_rgb
                )
                if given_mask is not None:
                    load_mask(given_mask, indices[i], array.shape[:2], allow_full=True)
                else:
                    good.append(i)
                    decoded[i] = array  # SAM reads this decoded copy: each image is decoded once here
            except ValueError as error:
                results[i] = error
        if good:
            try:
                _, computed = processor.compute_roi_masks(
                    [decoded[i] for i in good],
                    input_boxes=[boxes[i] if boxes and boxes[i] else None for i in good],
                    input_points=[points[i] if points and points[i] else None for i in good],
                )
                for i, image_masks in zip(good, computed):
                    results[i] = image_masks[0]
            except ValueError:
                if on_error == "raise":
                    raise
                for i in good:  # find the culprit one sample at a time
                    try:
                        results[i] = processor.compute_roi_masks(
                            [decoded[i]],
                            input_boxes=[boxes[i] if boxes and boxes[i] else None],
                            input_points=[points[i] if points and points[i] else None],
                        )[1][0][0]
                    except ValueError as sample_error:
                        results[i] = sample_error
        for i, mask in enumerate(existing):
            value = results.get(i, mask)
            if isinstance(value, Exception):
                if on_error == "raise":
                    raise ValueError(f"sample {indices[i]} ({names[indices[i]] or 'in memory'}): {value}")
                masks.append(None)
                errors.append(str(value))
            else:
                masks.append(encode_mask(value) if isinstance(value, np.ndarray) else value)
                errors.append(None)
        return {mask_column: masks, "_roi_mask_error": errors}

    features = dataset.features.copy()
    features[mask_column] = datasets.Image()
    features["_roi_mask_error"] = datasets.Value("string")
    rank, world_size, wait_for_everyone = _process_group()
    report.process_index, report.num_processes = rank, world_size

    def build_shard(shard_index: int, start: int):
        stop = min(start + shard_size, len(dataset))
        cache_file = cache_dir / f"masks-{fingerprint}-{shard_index:05d}-of-{len(dataset)}.arrow"
        shard = dataset.select(range(start, stop))
        if mask_column not in shard.column_names:
            shard = shard.add_column(mask_column, [None] * len(shard), feature=datasets.Image())
        # `datasets` writes the cache file under a temporary name and renames it when complete: a killed run
        # leaves no torn shard, and the next run (with any number of processes) recomputes only what is missing.
        return shard.map(
            lambda batch, idx, offset=start: add_masks(batch, [offset + i for i in idx]),
            batched=True,
            batch_size=batch_size,
            with_indices=True,
            features=features,
            cache_file_name=str(cache_file),
            load_from_cache_file=True,
            new_fingerprint=f"{fingerprint}-{shard_index}",
            desc=f"SAM masks, shard {shard_index + 1}",
        )

    starts = list(enumerate(range(0, len(dataset), shard_size)))
    shard_files = {i: cache_dir / f"masks-{fingerprint}-{i:05d}-of-{len(dataset)}.arrow" for i, _ in starts}
    # Each process computes the missing shards of its rank (round robin: shard i is rank i % world_size's), then
    # every process reads every shard once all are written: no shard is computed twice, and the result does not
    # depend on how many processes made it.
    built = {}
    for shard_index, start in starts:
        if shard_files[shard_index].exists():
            report.shards_reused += 1
        elif shard_index % world_size == rank:
            report.shards_computed += 1
            built[shard_index] = build_shard(shard_index, start)
    wait_for_everyone()
    shards = [built[index] if index in built else build_shard(index, start) for index, start in starts]
    result = datasets.concatenate_datasets(shards) if shards else dataset
    errors = result["_roi_mask_error"]
    bad = [i for i, e in enumerate(errors) if e is not None]
    report.skipped = [{"index": i, "name": names[i], "error": errors[i]} for i in bad]
    if bad:
        from transformers.utils import logging

        logging.get_logger(__name__).warning(
            f"Skipped {len(bad)} samples without a usable ROI: {[r['name'] or r['index'] for r in report.skipped[:10]]}"
        )
        result = result.select([i for i in range(len(result)) if errors[i] is None])
    result = result.remove_columns("_roi_mask_error").cast_column(mask_column, datasets.Image())
    return result.cast_column(image_column, image_feature), report


# ----------------------------------------------------------------------------------------------- transforms


class FullImagePreprocessor:
    """uint8 HWC image -> float CHW tensor at one model's input size and normalisation (no cut-out).

    What a single classifier (or a distillation teacher) trained on whole photos expects: a plain resize to `size`
    (bilinear, antialiased), scaled to [0, 1], normalised with that model's `mean`/`std`.

    Args:
        size (`int` or `(height, width)`): the model's input size.
        mean, std (`Sequence[float]`): the model's normalisation.
    """

    def __init__(self, size: int | Sequence[int], mean: Sequence[float], std: Sequence[float]):
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if min(height, width) <= 0:
            raise ValueError(f"`size` must be positive, got {size!r}.")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"`mean` and `std` need 3 values each (std > 0), got mean={mean!r}, std={std!r}.")
        self.size = (int(height), int(width))
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float()
        canvas, _ = resize_to_canvas(pixels, None, {"height": self.size[0], "width": self.size[1]}, "resize")
        return normalize(canvas, self.mean, self.std)

    def __repr__(self) -> str:
        return f"FullImagePreprocessor(size={self.size}, mean={self.mean}, std={self.std})"


def single_model_preprocessors(
    preprocessing: dict, size: int | None = None, **processor_settings: Any
) -> tuple[RveRNetImageProcessor, "FullImagePreprocessor"]:
    """The inputs of a single classifier (teacher, baseline) with normalisation `preprocessing` ({size, mean, std}):
    an `RveRNetImageProcessor` whose ROI and context cut-outs use that normalisation, and the full-image
    preprocessor. `size` overrides the square input side."""
    size = size or preprocessing["size"][0]
    mean, std = list(preprocessing["mean"]), list(preprocessing["std"])
    cutouts = RveRNetImageProcessor(
        size={"height": size, "width": size},
        roi_image_mean=mean,
        roi_image_std=std,
        context_image_mean=mean,
        context_image_std=std,
        **processor_settings,
    )
    return cutouts, FullImagePreprocessor(size, mean, std)


SINGLE_VIEWS = ("full_image", "roi", "context")
TEACHER_INPUTS = ("full_image", "augmented_full_image")


# What the transforms emit that a model reads (the rest: labels, teacher inputs and cached teacher logits).
MODEL_INPUTS = ("pixel_values", "roi_pixel_values", "context_pixel_values", "roi_token_mask", "context_token_mask")


class RveRNetTransform:
    """`dataset.with_transform(...)` callable: rows -> `roi_pixel_values`, `context_pixel_values`, `labels` (and
    `roi_token_mask` / `context_token_mask`, from the augmented mask, when the processor has a `patch_size`).

    With `train=True`, augmentations are drawn once per sample and applied to the image and its mask together,
    before the cut-outs are made, so the ROI and context cut-outs always share the same flip, crop and scale (the
    official code flipped the two streams independently: a bug). Random draws use torch's generator, so
    `transformers.set_seed` makes them reproducible.

    Args:
        processor: the `RveRNetImageProcessor` that makes the cut-outs.
        train: apply augmentations.
        flip_prob: probability of a horizontal flip.
        crop_scale: range of the random crop's area, as a fraction of the image (the crop always keeps part of the
            ROI); `(1.0, 1.0)` disables cropping.
        crop_ratio: range of the random crop's aspect ratio.
        teacher_processor: when given (a callable uint8 HWC image -> pixel tensor, e.g. a `FullImagePreprocessor`
            with the teacher's size and normalisation), also return `teacher_pixel_values`.
        teacher_input: what the teacher sees: `"full_image"` (the untouched photo, no cut-out and no random
            augmentation, so its logits can be cached) or `"augmented_full_image"` (the photo with the same crop and
            flip as the student's cut-outs, as in DeiT).
        single_view: for a single classifier (teacher fine-tuning, baselines) instead of RveRNet: return only
            `pixel_values` of one view, `"full_image"` (made by `single_processor`), `"roi"` or `"context"` (the
            processor's cut-outs). Masks are not needed for `"full_image"`.
        single_processor: the `FullImagePreprocessor` of the single classifier (for `single_view="full_image"`).
        seed: when given, each sample's augmentation is a pure function of `(seed, epoch, sample index)` (the index
            read from `index_column`, see `add_sample_index`; the epoch set by `AugmentationEpochCallback`), not of
            a global random stream: a resumed run and a multi-process run draw exactly the augmentations of an
            uninterrupted single-process run. Without it, torch's global generator is used.

    A `teacher_logits` column (cached teacher outputs) is passed through as a float tensor.
    """

    def __init__(
        self,
        processor: RveRNetImageProcessor | None,
        train: bool = False,
        flip_prob: float = 0.5,
        crop_scale: tuple[float, float] = (0.6, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        image_column: str = "image",
        mask_column: str = "roi_mask",
        label_column: str = "label",
        teacher_processor: Any = None,
        teacher_input: str = "full_image",
        single_view: str | None = None,
        single_processor: Any = None,
        seed: int | None = None,
        index_column: str = "sample_index",
    ):
        if teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"`teacher_input` must be one of {TEACHER_INPUTS}, got {teacher_input!r}.")
        if single_view is not None and single_view not in SINGLE_VIEWS:
            raise ValueError(f"`single_view` must be one of {SINGLE_VIEWS} or None, got {single_view!r}.")
        if single_view == "full_image" and single_processor is None:
            raise ValueError("`single_view='full_image'` needs a `single_processor` (e.g. a FullImagePreprocessor).")
        if single_view != "full_image" and processor is None:
            raise ValueError("cut-outs need an RveRNetImageProcessor: `processor` is None.")
        self.processor = processor
        self.train = train
        self.flip_prob = flip_prob
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.image_column = image_column
        self.mask_column = mask_column
        self.label_column = label_column
        self.teacher_processor = teacher_processor
        self.teacher_input = teacher_input
        self.single_view = single_view
        self.single_processor = single_processor
        self.seed = seed
        self.index_column = index_column
        self.epoch = 0

    def _crop_box(self, mask: np.ndarray, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        height, width = mask.shape
        if self.crop_scale == (1.0, 1.0):
            return 0, 0, height, width
        for _ in range(10):
            area = height * width * float(torch.empty(1).uniform_(*self.crop_scale, generator=generator))
            log_ratio = torch.empty(1).uniform_(
                np.log(self.crop_ratio[0]), np.log(self.crop_ratio[1]), generator=generator
            )
            ratio = float(torch.exp(log_ratio))
            crop_w, crop_h = round((area * ratio) ** 0.5), round((area / ratio) ** 0.5)
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator))
                window = mask[top : top + crop_h, left : left + crop_w]
                if window.any() and not window.all():
                    return top, left, crop_h, crop_w
        return 0, 0, height, width

    def augment(
        self, image: np.ndarray, mask: np.ndarray, generator: torch.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One random crop and flip, the same for the image and its mask."""
        top, left, crop_h, crop_w = self._crop_box(mask, generator)
        image, mask = image[top : top + crop_h, left : left + crop_w], mask[top : top + crop_h, left : left + crop_w]
        if float(torch.rand(1, generator=generator)) < self.flip_prob:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)

    def generator_for(self, batch: dict[str, list], position: int) -> torch.Generator | None:
        """The per-sample generator (seeded by seed, epoch and sample index), or None for the global one."""
        if self.seed is None:
            return None
        if self.index_column not in batch:
            raise ValueError(
                f"`seed` is set but the batch has no `{self.index_column}` column: call `add_sample_index(dataset)`."
            )
        index = int(batch[self.index_column][position])
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)

    def _model_inputs(self, batch: dict[str, list], views: dict[str, list]) -> dict[str, torch.Tensor]:
        output = {name: torch.stack(tensors) for name, tensors in views.items() if tensors}
        if self.label_column in batch:
            output["labels"] = torch.as_tensor(batch[self.label_column], dtype=torch.long)
        if "teacher_logits" in batch:
            output["teacher_logits"] = torch.as_tensor(np.asarray(batch["teacher_logits"]), dtype=torch.float32)
        return output

    def __call__(self, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        views: dict[str, list] = {
            "roi_pixel_values": [],
            "context_pixel_values": [],
            "roi_token_mask": [],
            "context_token_mask": [],
            "pixel_values": [],
            "teacher_pixel_values": [],
        }
        needs_mask = self.single_view != "full_image"
        masks = batch.get(self.mask_column) or [None] * len(batch[self.image_column])
        for index, (image, mask) in enumerate(zip(batch[self.image_column], masks)):
            if mask is None and needs_mask:
                raise ValueError(
                    f"sample {index} of the batch has no `{self.mask_column}`: run `precompute_roi_masks` first."
                )
            pad_value = self.processor.pad_value if self.processor is not None else 125
            array = load_image(image, index, background=pad_value)
            untouched = array
            if mask is None:  # full-image view without a mask: random crops keep part of the central half
                height, width = array.shape[:2]
                mask = np.zeros((height, width), dtype=bool)
                mask[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
            else:
                mask = load_mask(mask, index, array.shape[:2], allow_full=True)
            if self.train:
                array, mask = self.augment(array, mask, self.generator_for(batch, index))
            if self.single_view == "full_image":
                views["pixel_values"].append(self.single_processor(array))
            else:
                roi, context, canvas_mask = self.processor.make_cutouts(array, mask)
                if self.single_view is None:
                    views["roi_pixel_values"].append(roi)
                    views["context_pixel_values"].append(context)
                    for name, token_mask in self.processor.token_masks(canvas_mask).items():
                        views[name].append(token_mask)
                else:
                    views["pixel_values"].append(roi if self.single_view == "roi" else context)
            if self.teacher_processor is not None:
                views["teacher_pixel_values"].append(
                    self.teacher_processor(untouched if self.teacher_input == "full_image" else array)
                )
        return self._model_inputs(batch, views)


class PairedTransform(RveRNetTransform):
    """The same for the paired layout (`roi_image` + `context_image`, already cut): one flip for both."""

    def __call__(self, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        rois, contexts = [], []
        for index, (roi_image, context_image) in enumerate(zip(batch["roi_image"], batch["context_image"])):
            roi_array = load_image(roi_image, index)
            context_array = load_image(context_image, index)
            if self.train and float(torch.rand(1, generator=self.generator_for(batch, index))) < self.flip_prob:
                roi_array, context_array = roi_array[:, ::-1].copy(), context_array[:, ::-1].copy()
            pair = self.processor.preprocess_pairs([roi_array], [context_array])
            rois.append(pair["roi_pixel_values"][0])
            contexts.append(pair["context_pixel_values"][0])
        return self._model_inputs(batch, {"roi_pixel_values": rois, "context_pixel_values": contexts})


def add_sample_index(dataset, column: str = "sample_index"):
    """Number the samples (for `RveRNetTransform(seed=...)`: per-sample augmentation that survives resume and DDP)."""
    if column in dataset.column_names:
        return dataset
    return dataset.add_column(column, list(range(len(dataset))))


def augmentation_epoch_callback(*transforms: RveRNetTransform):
    """A `TrainerCallback` that tells seeded transforms which epoch starts (their augmentations change per epoch)."""
    from transformers import TrainerCallback

    class AugmentationEpochCallback(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            for transform in transforms:
                transform.epoch = int((state.epoch or 0) + 1e-6)

    return AugmentationEpochCallback()


__all__ = [
    "LABEL_CHANNELS",
    "MODEL_INPUTS",
    "label_map_array",
    "FullImagePreprocessor",
    "add_sample_index",
    "augmentation_epoch_callback",
    "MaskingReport",
    "PairedTransform",
    "RveRNetTransform",
    "encode_mask",
    "load_foodseg103_folder",
    "load_image_folder_dataset",
    "load_paired_folder_dataset",
    "precompute_roi_masks",
    "segmentation_to_roi_dataset",
    "single_model_preprocessors",
]
