# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Dataset sources: every builder returns a `datasets.Dataset` in the one schema the rest of the package reads.

Columns: `image` (or `roi_image` + `context_image` for the paired layout), `label` (`ClassLabel`), and, when masks are
known, `roi_mask` (a 1-bit PNG, `encode_mask`, decoded as a PIL image). Optional prompt columns: `roi_box`
([x0, y0, x1, y1]) and `roi_points` ([[x, y], ...]). Sources: image folders (+ mask trees, prompt metadata),
semantic-segmentation datasets (label maps, the public food datasets' schemas: FoodSeg103, UECFoodPix), the
FoodSeg103 folder layout, and the official code's paired layout.
"""

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import require_extra
from ..image_utils_rvernet import image_size_from_header, unwrap_cell


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _datasets():
    require_extra("train", "this dataset builder")
    import datasets

    return datasets


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A bool mask as a 1-bit PNG (compact, lossless), in the form of a `datasets.Image` cell."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buffer, format="PNG", optimize=True)
    return {"bytes": buffer.getvalue(), "path": None}


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


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
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(
            f"the label map of sample {index} holds {array.dtype} values, not class ids (integers): a label map "
            "is an image (PNG, mode L / P / I) or an integer array."
        )
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


def _image_size(cell: dict, index: int) -> tuple[int, int]:
    """(height, width) of an undecoded `datasets.Image` cell as it decodes, from its header only."""
    return image_size_from_header(unwrap_cell(cell), f"the image of sample {index}")


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

    image_feature = dataset.features[image_column]
    if isinstance(image_feature, datasets.Image):
        # The photos pass through undecoded (only their size is read here): the mask cache decodes each once.
        dataset = dataset.cast_column(image_column, datasets.Image(decode=False))

    def explode(batch, indices):
        out = {"image": [], "label": [], "roi_mask": [], "source_index": []}
        classes = batch[listed] if listed else [None] * len(indices)
        for image, label_map, index, present in zip(batch[image_column], batch[label_map_column], indices, classes):
            label_map = label_map_array(label_map, index, label_channel)
            image_size = _image_size(image, index) if isinstance(image, dict) else np.asarray(image).shape[:2]
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
            "image": image_feature if isinstance(image_feature, datasets.Image) else datasets.Image(),
            "label": datasets.ClassLabel(names=[id2label[i] for i in kept]),
            "roi_mask": datasets.Image(),
            "source_index": datasets.Value("int64"),
        }
    )
    samples = dataset.map(
        explode,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        features=features,
        num_proc=num_proc,
        desc="One sample per (image, class)",
    )
    if len(samples) == 0 and len(dataset) > 0:
        first = label_map_array(dataset[0][label_map_column], 0, label_channel)
        raise ValueError(
            f"the label-map column {label_map_column!r} (label_channel {label_channel!r}) yields no class on any of "
            f"its {len(dataset)} images: sample 0 holds ids {np.unique(first).tolist()[:10]}, and ids "
            f"{sorted(ignore_ids)} are background/void, classes under min_area {min_area} of the image are skipped. "
            "Wrong column or channel? (UECFoodPix keeps the class id in the red channel.)"
        )
    return samples


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
