# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The training job's data: the splits its arguments name, in the one schema of `rvernet_hf.data`, labelled with one
label map and checked before any work (label range, empty classes), then every sample read once (`prepare_splits`:
its image and mask checked, missing masks made by SAM, and the teacher's logits when they are cached)."""

import json
from pathlib import Path

from transformers.utils import logging

from ..data import (
    load_image_folder_dataset,
    load_paired_folder_dataset,
    precompute_roi_masks,
    segmentation_to_roi_dataset,
)
from ..distillation import compute_teacher_logits
from ..labels import check_same_labels, preview
from .arguments import SOURCE_LAYOUTS, DataArguments


logger = logging.get_logger(__name__)


def _source(data_args: DataArguments) -> str:
    """The layout to read: the source's own, or what --data_layout names if that source can be read that way."""
    sources = [name for name in SOURCE_LAYOUTS if getattr(data_args, name)]
    if len(sources) != 1:
        raise ValueError(
            f"give exactly one data source (--dataset_name, --train_dir or --paired_dir); got {sources or 'none'}."
        )
    readable = SOURCE_LAYOUTS[sources[0]]
    if data_args.data_layout == "auto":
        return readable[0]
    if data_args.data_layout not in readable:
        raise ValueError(
            f"--data_layout {data_args.data_layout} cannot read --{sources[0]}: it is read as "
            f"{' or '.join(readable)} (--data_layout segmentation reads a --dataset_name of label maps)."
        )
    return data_args.data_layout


def load_data(data_args: DataArguments, seed: int = 42):
    """`(DatasetDict(train, validation), layout)`, with columns renamed to image/label/roi_mask and labels checked."""
    import datasets

    layout = _source(data_args)
    if layout == "imagefolder":
        splits = {"train": load_image_folder_dataset(data_args.train_dir, data_args.train_masks_dir)}
        if data_args.validation_dir:
            splits["validation"] = load_image_folder_dataset(data_args.validation_dir, data_args.validation_masks_dir)
            if splits["validation"].features["label"].names != splits["train"].features["label"].names:
                raise ValueError(
                    f"validation_dir classes {splits['validation'].features['label'].names} differ from train_dir's "
                    f"{splits['train'].features['label'].names}."
                )
    elif layout == "paired":
        splits = {"train": load_paired_folder_dataset(data_args.paired_dir, "train")}
        if (Path(data_args.paired_dir) / "test").is_dir():
            splits["validation"] = load_paired_folder_dataset(data_args.paired_dir, "test")
    else:
        loaded = load_hub_dataset(data_args)
        validation_split = data_args.validation_split or next((s for s in ("validation", "test") if s in loaded), None)
        names = {"train": data_args.train_split, **({"validation": validation_split} if validation_split else {})}
        splits, layout = hub_splits(loaded, names, data_args)
    num_labels = len(splits["train"].features["label"].names)
    for name, split in splits.items():  # before a validation split is carved: a bad label is named, not tripped on
        check_label_range(split, name, num_labels)
    if "validation" not in splits:
        fraction = data_args.validation_split_percentage / 100
        if not 0 < fraction < 1:
            raise ValueError(
                "no evaluation split: set --validation_dir/--validation_split or a percentage in (0, 100)."
            )
        splits = carve_validation(splits["train"], fraction, seed)
    check_class_counts(splits)
    for name, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples)):
        if limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    return datasets.DatasetDict(splits), layout


def load_hub_dataset(data_args: DataArguments):
    """--dataset_name as a DatasetDict: a folder written by `save_to_disk`, else a Hub dataset (or a local script /
    data folder `datasets.load_dataset` reads)."""
    import datasets

    path = Path(data_args.dataset_name)
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()):
        loaded = datasets.load_from_disk(str(path))
    else:
        loaded = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({data_args.train_split: loaded})
    return loaded


def hub_splits(loaded, names: dict[str, str], data_args: DataArguments) -> tuple[dict, str]:
    """`({role: split}, layout)`: the dataset's splits `names` ({role: split name}, the first role's label map
    serving every split) with columns image/label/roi_mask; a segmentation dataset (label maps: --data_layout
    segmentation, or auto on a label column of images) becomes one sample per (image, class) with source_index."""
    import datasets

    for split in names.values():
        if split not in loaded:
            raise ValueError(f"the dataset has no split {split!r} (splits: {list(loaded)}).")
    splits = {role: loaded[split] for role, split in names.items()}
    first = next(iter(splits.values()))
    layout = "hub" if data_args.data_layout == "auto" else data_args.data_layout
    if data_args.data_layout == "auto" and isinstance(first.features.get(data_args.label_column), datasets.Image):
        layout = "segmentation"  # the label column holds label maps
        logger.info(f"{data_args.dataset_name}: its {data_args.label_column!r} column holds images: label maps.")
    if layout != "segmentation":
        reference = next(iter(splits))
        standard = {role: _standard_columns(split, data_args, names[role]) for role, split in splits.items()}
        labelled = one_label_map({"train": standard[reference], **standard})
        return {role: labelled[role] for role in splits}, layout
    id2label = segmentation_id2label(data_args)
    converted = {
        role: segmentation_to_roi_dataset(
            split,
            id2label,
            data_args.image_column,
            data_args.label_column,
            min_area=data_args.segmentation_min_area,
            classes_column=data_args.classes_column,
            label_channel=data_args.label_channel,
        )
        for role, split in splits.items()
    }
    return converted, layout


def carve_validation(train, fraction: float, seed: int) -> dict:
    """`{"train", "validation"}` from one split, `fraction` held out. Samples cut from one photo (a segmentation
    dataset's `source_index`: one sample per food) go to the same side, so that no validation photo is seen in
    training, and keep their order (the mask pass decodes each photo once for its neighbouring samples); other
    datasets are split stratified by label."""
    import numpy as np

    if "source_index" not in train.column_names:
        carved = train.train_test_split(test_size=fraction, seed=seed, stratify_by_column="label")
        return {"train": carved["train"], "validation": carved["test"]}
    sources = np.asarray(train["source_index"])
    photos = np.unique(sources)
    if len(photos) < 2:
        raise ValueError(
            f"no evaluation split and {len(photos)} photo(s) to hold some out of: give a validation split."
        )
    held_count = min(len(photos) - 1, max(1, round(fraction * len(photos))))
    held = np.random.default_rng(seed).choice(photos, size=held_count, replace=False)
    in_validation = np.isin(sources, held)
    logger.info(f"Held out {held_count} of {len(photos)} photos ({int(in_validation.sum())} samples) for evaluation.")
    return {
        "train": train.select(np.flatnonzero(~in_validation)),
        "validation": train.select(np.flatnonzero(in_validation)),
    }


def segmentation_id2label(data_args: DataArguments) -> dict[int, str]:
    """The class names of a segmentation dataset's label maps (pixel id -> name): --id2label_file, else the dataset
    repository's own `id2label.json` (a local dataset folder's, or the Hub dataset repository's)."""
    if data_args.id2label_file:
        source = Path(data_args.id2label_file)
        if not source.is_file():
            raise ValueError(f"--id2label_file {source} does not exist.")
    elif Path(data_args.dataset_name, "id2label.json").is_file():
        source = Path(data_args.dataset_name, "id2label.json")
    elif Path(data_args.dataset_name).exists():
        raise ValueError(
            f"--data_layout segmentation: {data_args.dataset_name} has no id2label.json; give --id2label_file "
            "(JSON {id: class name} of the label maps' ids)."
        )
    else:
        from huggingface_hub import hf_hub_download

        try:
            source = Path(hf_hub_download(data_args.dataset_name, "id2label.json", repo_type="dataset"))
        except Exception as error:  # noqa: BLE001 (any Hub failure: the user's remedy is the same)
            raise ValueError(
                f"--data_layout segmentation: cannot read id2label.json of the dataset {data_args.dataset_name} "
                f"({type(error).__name__}); give --id2label_file (JSON {{id: class name}})."
            ) from None
    try:
        # pixel ids of a label map, not a model's label space: gaps are allowed (the model's labels come later)
        return {int(k): str(v) for k, v in json.loads(source.read_text()).items()}
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{source} is not a JSON object {{id: class name}}: {error}") from None


def check_label_range(dataset, split: str, num_labels: int) -> None:
    """Every label id must be in [0, num_labels). Checked once when the data is loaded, so that the model's forward
    needs no per-step check (which would cost a device-to-host sync on a GPU)."""
    import numpy as np

    labels = np.asarray(dataset.with_format("numpy")["label"])
    bad = np.flatnonzero((labels < 0) | (labels >= num_labels))
    if bad.size:
        raise ValueError(
            f"the {split} split has {bad.size} label(s) outside [0, {num_labels}): values "
            f"{labels[bad[:5]].tolist()} at samples {bad[:5].tolist()} (-1 is a ClassLabel's 'no label'); fix or "
            "drop those samples."
        )


def _standard_columns(dataset, data_args: DataArguments, split: str):
    """Rename the user's columns to image/label/roi_mask; labels become a ClassLabel; clear errors otherwise."""
    import datasets

    renames = {data_args.image_column: "image", data_args.label_column: "label", data_args.mask_column: "roi_mask"}
    for column, role in ((data_args.image_column, "image"), (data_args.label_column, "label")):
        if column not in dataset.column_names:
            raise ValueError(
                f"the {split} split has no {role} column {column!r} (columns: {dataset.column_names}); "
                f"set --{role}_column."
            )
    dataset = dataset.rename_columns({k: v for k, v in renames.items() if k in dataset.column_names and k != v})
    feature = dataset.features["label"]
    if not isinstance(feature, datasets.ClassLabel) and getattr(feature, "dtype", None) != "string":
        raise ValueError(f"the {split} split's label column is {feature}: expected a ClassLabel or strings.")
    return dataset


def one_label_map(splits: dict) -> dict:
    """Every split labelled with ONE label map, the training split's: its ClassLabel names, or (string labels) its
    sorted distinct strings. A split whose ClassLabel names differ, or with a string label the training split lacks,
    is refused, naming the split and the labels (encoding each split on its own would give one name two ids)."""
    import datasets

    train = splits["train"].features["label"]
    names = train.names if isinstance(train, datasets.ClassLabel) else sorted(set(splits["train"]["label"]))
    labelled = {}
    for split, dataset in splits.items():
        feature = dataset.features["label"]
        if isinstance(feature, datasets.ClassLabel):
            if feature.names != names:
                raise ValueError(
                    f"the {split} split's label names differ from the training split's ({preview(feature.names)} "
                    f"vs {preview(names)}): one label map must serve every split."
                )
            labelled[split] = dataset
            continue
        unknown = sorted(set(dataset["label"]) - set(names))
        if unknown:
            raise ValueError(
                f"the {split} split has labels the training split lacks: {preview(unknown)} (training labels: "
                f"{preview(names)}). Add them to the training data or drop those samples."
            )
        labelled[split] = dataset.cast_column("label", datasets.ClassLabel(names=names))
    return labelled


def check_class_counts(splits: dict) -> None:
    """A class without a training sample cannot be learned: refused, naming it (an empty class folder, a label
    present only in the label map); a class without a validation sample is only reported."""
    import numpy as np

    for split, dataset in splits.items():
        names = dataset.features["label"].names
        counts = np.bincount(np.asarray(dataset.with_format("numpy")["label"]), minlength=len(names))
        empty = [names[i] for i in np.flatnonzero(counts[: len(names)] == 0)]
        if empty and split == "train":
            raise ValueError(
                f"the training split has no sample of class(es) {preview(empty)} (an empty class folder?): remove "
                "them from the data (or the label map), or add samples."
            )
        if empty:
            logger.warning(f"the {split} split has no sample of class(es) {preview(empty)}: they are not evaluated.")


def check_labels(dataset_labels: list[str], model_id2label: dict[int, str], what: str = "the model") -> None:
    """The dataset's labels must be the model's, with the same ids."""
    check_same_labels(model_id2label, dataset_labels, what, "the dataset")


def needs_masks(model_args, layout: str) -> bool:
    """Whether the model reads ROI masks (RveRNet, or a single classifier on the ROI or context cut-out)."""
    return layout != "paired" and (model_args.model_type == "rvernet" or model_args.single_view != "full_image")


def prepare_splits(data, preprocessing: dict, data_args: DataArguments, training_args, teacher, masks: bool):
    """Every sample of every split read once, before the first step: with `masks`, its image and its mask when it
    has one (size, values, not empty) are checked and SAM makes the missing masks (`precompute_roi_masks`: cached,
    resumable, split across processes); with a teacher whose logits are cached, its logits, from the same decoded
    photo (`compute_teacher_logits` when no mask pass is needed: a single classifier on full photos). Bad samples
    raise, naming the split and the sample, or (`--on_bad_samples skip`) are dropped and reported."""
    cached_teacher = teacher if teacher is not None and training_args.cache_teacher_logits else None
    if masks:
        # (Under several processes, joined when the run started, each process computes its own shards.) The
        # teacher's logits are made in the same pass, from the same decoded photos.
        for split in list(data):
            # (Counted in the arrow column: reading the column itself would decode every mask for a log line.)
            given = "roi_mask" in data[split].column_names and (
                data[split].with_format("arrow")["roi_mask"].null_count == 0
            )
            logger.info(
                f"Checking the {split} split{'' if given else ' and computing its missing ROI masks'} "
                "(once; cached and resumable)."
            )
            try:
                data[split], report = precompute_roi_masks(
                    data[split],
                    preprocessing["cutouts"],
                    cache_dir=data_args.mask_cache_dir,
                    on_error=data_args.on_bad_samples,
                    teacher=cached_teacher,
                    teacher_device=training_args.device,
                )
            except ValueError as error:
                raise ValueError(
                    f"the {split} split: {error} (--on_bad_samples skip drops such samples and reports them)"
                ) from None
            if report.skipped:
                dropped = [entry["name"] or entry["index"] for entry in report.skipped]
                logger.warning(
                    f"the {split} split: dropped {len(dropped)} bad sample(s) (--on_bad_samples skip): "
                    f"{dropped[:10]}{' ...' if len(dropped) > 10 else ''}; first reason: "
                    f"{report.skipped[0]['error']}"
                )
                if len(data[split]) == 0:
                    raise ValueError(f"the {split} split has no usable sample left after dropping bad ones.")
    if cached_teacher is not None and not masks:  # a single classifier on full photos: no mask pass
        with training_args.main_process_first(desc="teacher logits"):
            for split in list(data):
                data[split] = compute_teacher_logits(
                    data[split],
                    cached_teacher,
                    batch_size=training_args.per_device_eval_batch_size,
                    device=training_args.device,
                )
    return data
