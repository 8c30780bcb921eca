# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Fine-tune RveRNet (or a single classifier: the CNN teacher, or a baseline) with optional CNN-teacher distillation.

This is `examples/run_rvernet.py` and `rvernet-hf train`: the same code. Arguments come from the command line or one
JSON file (`rvernet-hf train args.json`). It runs as it is under `python`, `torchrun` and `accelerate launch`
(multi-GPU, multi-node, `--bf16`/`--fp16`, `--gradient_accumulation_steps`), with `--gradient_checkpointing` and
`--resume_from_checkpoint` (a folder, or `True` for the latest checkpoint in `--output_dir`).

Fixed ending: train -> save -> log and save metrics -> evaluate -> confusion matrix, curves, model card -> push.

    # 1. fine-tune the CNN teacher on the target dataset (full images)
    rvernet-hf train --model_type single --model_name_or_path efficientnet-lite0-imagenet \\
        --train_dir data/train --validation_dir data/val --output_dir teacher --num_train_epochs 5
    # 2. RveRNet with distillation from it
    rvernet-hf train --train_dir data/train --train_masks_dir data/train_masks ... \\
        --distillation_type hard --teacher_model_name_or_path teacher --cache_teacher_logits --output_dir rvernet
"""

import json
import logging as std_logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from transformers import HfArgumentParser, set_seed
from transformers.utils import logging

from .data import (
    PairedTransform,
    RveRNetTransform,
    add_sample_index,
    augmentation_epoch_callback,
    load_image_folder_dataset,
    load_paired_folder_dataset,
    precompute_roi_masks,
    segmentation_to_roi_dataset,
    single_model_preprocessors,
)
from .distillation import (
    DistillationTrainingArguments,
    RveRNetDistillationTrainer,
    check_teacher_labels,
    compute_teacher_logits,
    load_teacher,
)
from .labels import check_same_labels, label2id_of, normalize_id2label
from .run_folder import OutputDirLock, check_output_dir, find_resumable_checkpoint, incomplete_reason
from .segmentation_rvernet import DEFAULT_SEGMENTER


logger = logging.get_logger(__name__)
MODEL_TYPES = ("rvernet", "single")
DATA_LAYOUTS = ("auto", "imagefolder", "segmentation", "paired", "hub")


@dataclass
class ModelArguments:
    """Which model to train, and how its inputs are made."""

    model_type: str = field(
        default="rvernet",
        metadata={
            "help": "rvernet: the two-tower model. single: one classifier on one view (`single_view`): the "
            "teacher fine-tuning step, or a baseline.",
            "choices": list(MODEL_TYPES),
        },
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "rvernet: an RveRNet checkpoint to fine-tune further (else built from the two towers). "
            "single: the classifier (Hub id, folder, timm/<name>, or efficientnet-lite0-imagenet)."
        },
    )
    roi_model_name_or_path: str = field(
        default="facebook/deit-base-distilled-patch16-224", metadata={"help": "The ROI tower (Hub id or folder)."}
    )
    context_model_name_or_path: str = field(
        default="facebook/deit-base-distilled-patch16-224", metadata={"help": "The context tower (Hub id or folder)."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Random initialisation from the checkpoints' configs (no pretrained weights)."},
    )
    roi_from_scratch: bool = field(
        default=False,
        metadata={
            "help": "Random-init ROI tower (its config only); the context tower stays pretrained "
            "unless --context_from_scratch or --from_scratch."
        },
    )
    context_from_scratch: bool = field(
        default=False,
        metadata={
            "help": "Random-init context tower (its config only); the ROI tower stays pretrained "
            "unless --roi_from_scratch or --from_scratch."
        },
    )
    fusion: str = field(
        default="logits", metadata={"help": "logits (the paper's) or features.", "choices": ["logits", "features"]}
    )
    fusion_hidden_size: int = field(default=640, metadata={"help": "Width of the fusion head's hidden layer."})
    token_selection: str | None = field(
        default=None,
        metadata={
            "help": "dense (the paper: every patch) or mask (ViT-family towers read only the patches that overlap "
            "their region, about one tower's cost). Default: the --model_name_or_path model's own, else dense.",
            "choices": ["dense", "mask"],
        },
    )
    tower_num_labels: int | None = field(
        default=None,
        metadata={
            "help": "With --from_scratch and logits fusion: each tower's head size (default: the tower "
            "config's, raised to the dataset's label count so that the towers are no bottleneck)."
        },
    )
    single_view: str = field(
        default="full_image",
        metadata={"help": "single: what the classifier sees.", "choices": ["full_image", "roi", "context"]},
    )
    image_size: int | None = field(
        default=None, metadata={"help": "Cut-out size (default: the ROI tower's image_size, or its processor's)."}
    )
    sam_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Segmenter for samples without a mask. Default: the --model_name_or_path processor's, "
            "else facebook/sam-vit-base."
        },
    )
    context_mode: str | None = field(
        default=None,
        metadata={
            "help": "complement (the paper's) or full. Default: the --model_name_or_path processor's, else "
            "complement.",
            "choices": ["complement", "full"],
        },
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of the checkpoints."})


@dataclass
class DataArguments:
    """Where the data comes from. One source: a Hub (or `save_to_disk`) dataset, image folders, or the paired
    layout."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hub dataset id, or a folder saved with `save_to_disk`."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_dir: str | None = field(default=None, metadata={"help": "Image folder: <train_dir>/<class>/<image>."})
    validation_dir: str | None = field(default=None, metadata={"help": "Image folder for evaluation."})
    train_masks_dir: str | None = field(
        default=None, metadata={"help": "ROI masks for train_dir: <dir>/<class>/<image stem>.png."}
    )
    validation_masks_dir: str | None = field(default=None, metadata={"help": "ROI masks for validation_dir."})
    paired_dir: str | None = field(
        default=None, metadata={"help": "The official layout: <dir>/{train,test}/{roi,extra-roi}/<class>/<name>."}
    )
    data_layout: str = field(
        default="auto",
        metadata={
            "help": "auto, imagefolder, hub, paired, or segmentation (a semantic-segmentation dataset, "
            "FoodSeg103 style: one sample per (image, class present)). auto reads a --dataset_name whose label "
            "column holds images (label maps) as segmentation.",
            "choices": list(DATA_LAYOUTS),
        },
    )
    id2label_file: str | None = field(
        default=None,
        metadata={
            "help": "segmentation: JSON {id: name} of the label map's classes. Default: the dataset repository's "
            "own id2label.json (as FoodSeg103 and UECFoodPix publish it)."
        },
    )
    label_channel: str = field(
        default="auto",
        metadata={
            "help": "segmentation: the channel of a colour label map that holds the class ids (UECFoodPix: red); "
            "auto reads single-channel maps and refuses colour maps whose channels differ.",
            "choices": ["auto", "red", "green", "blue"],
        },
    )
    classes_column: str = field(
        default="classes_on_image",
        metadata={"help": "segmentation: the column listing each image's class ids, used when present."},
    )
    segmentation_min_area: float = field(
        default=0.01, metadata={"help": "segmentation: smallest class area (fraction of the image) kept."}
    )
    image_column: str = field(default="image", metadata={"help": "The image column."})
    label_column: str = field(default="label", metadata={"help": "The label column (segmentation: label map)."})
    mask_column: str = field(default="roi_mask", metadata={"help": "The ROI mask column (optional)."})
    train_split: str = field(default="train", metadata={"help": "Split used for training."})
    validation_split: str | None = field(
        default=None, metadata={"help": "Split used for evaluation (default: validation, else test, else carved)."}
    )
    validation_split_percentage: int = field(
        default=10, metadata={"help": "Without an evaluation split: the percentage of train held out (stratified)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate training data (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate evaluation data."})
    ambiguous_labels: str | None = field(
        default=None, metadata={"help": "Comma-separated labels of the ambiguous group (adds ambiguous_f1)."}
    )
    flip_prob: float = field(default=0.5, metadata={"help": "Horizontal flip probability (training)."})
    crop_scale_min: float = field(default=0.6, metadata={"help": "Smallest random-crop area fraction (1.0: no crop)."})
    mask_cache_dir: str | None = field(default=None, metadata={"help": "Where SAM mask shards are cached."})
    on_bad_samples: str = field(
        default="raise",
        metadata={"help": "raise or skip unreadable samples when computing masks.", "choices": ["raise", "skip"]},
    )


@dataclass
class HubArguments:
    """How the result is published (with `--push_to_hub` and `--hub_model_id`)."""

    hub_create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing."})
    push_dry_run_dir: str | None = field(
        default=None, metadata={"help": "Upload nothing: write the exact folder that would be uploaded here."}
    )
    model_card_dataset: str | None = field(
        default=None, metadata={"help": "Dataset name shown in the model card (default: the data source)."}
    )
    hub_sam_model_id: str | None = field(
        default=None,
        metadata={
            "help": "The segmenter's Hub id written in the uploaded processor config when the saved one names a "
            "local path (default: facebook/sam-vit-base). Machine paths are never uploaded."
        },
    )


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser((ModelArguments, DataArguments, DistillationTrainingArguments, HubArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


# ----------------------------------------------------------------------------------------------- data


# The layout each data source is read in; `--data_layout segmentation` reads a --dataset_name as label maps.
SOURCE_LAYOUTS = {"dataset_name": ("hub", "segmentation"), "train_dir": ("imagefolder",), "paired_dir": ("paired",)}


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
        path = Path(data_args.dataset_name)
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()):
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        if isinstance(loaded, datasets.Dataset):
            loaded = datasets.DatasetDict({data_args.train_split: loaded})
        if data_args.train_split not in loaded:
            raise ValueError(f"the dataset has no split {data_args.train_split!r} (splits: {list(loaded)}).")
        validation_split = data_args.validation_split or next((s for s in ("validation", "test") if s in loaded), None)
        splits = {"train": loaded[data_args.train_split]}
        if validation_split:
            if validation_split not in loaded:
                raise ValueError(f"the dataset has no split {validation_split!r} (splits: {list(loaded)}).")
            splits["validation"] = loaded[validation_split]
        label_feature = splits["train"].features.get(data_args.label_column)
        if data_args.data_layout == "auto" and isinstance(label_feature, datasets.Image):
            layout = "segmentation"  # the label column holds label maps
            logger.info(f"{data_args.dataset_name}: its {data_args.label_column!r} column holds images: label maps.")
        if layout == "segmentation":
            id2label = segmentation_id2label(data_args)
            splits = {
                name: segmentation_to_roi_dataset(
                    split,
                    id2label,
                    data_args.image_column,
                    data_args.label_column,
                    min_area=data_args.segmentation_min_area,
                    classes_column=data_args.classes_column,
                    label_channel=data_args.label_channel,
                )
                for name, split in splits.items()
            }
        else:
            splits = one_label_map({name: _standard_columns(split, data_args, name) for name, split in splits.items()})
    if "validation" not in splits:
        fraction = data_args.validation_split_percentage / 100
        if not 0 < fraction < 1:
            raise ValueError(
                "no evaluation split: set --validation_dir/--validation_split or a percentage in (0, 100)."
            )
        carved = splits["train"].train_test_split(test_size=fraction, seed=seed, stratify_by_column="label")
        splits = {"train": carved["train"], "validation": carved["test"]}
    num_labels = len(splits["train"].features["label"].names)
    for name, split in splits.items():
        check_label_range(split, name, num_labels)
    check_class_counts(splits)
    for name, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples)):
        if limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    return datasets.DatasetDict(splits), layout


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
                    f"the {split} split's label names differ from the training split's ({_preview(feature.names)} "
                    f"vs {_preview(names)}): one label map must serve every split."
                )
            labelled[split] = dataset
            continue
        unknown = sorted(set(dataset["label"]) - set(names))
        if unknown:
            raise ValueError(
                f"the {split} split has labels the training split lacks: {_preview(unknown)} (training labels: "
                f"{_preview(names)}). Add them to the training data or drop those samples."
            )
        labelled[split] = dataset.cast_column("label", datasets.ClassLabel(names=names))
    return labelled


def _preview(names: list, limit: int = 10) -> str:
    return f"{list(names[:limit])}{' ...' if len(names) > limit else ''}"


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
                f"the training split has no sample of class(es) {_preview(empty)} (an empty class folder?): remove "
                "them from the data (or the label map), or add samples."
            )
        if empty:
            logger.warning(f"the {split} split has no sample of class(es) {_preview(empty)}: they are not evaluated.")


def check_labels(dataset_labels: list[str], model_id2label: dict[int, str], what: str = "the model") -> None:
    """The dataset's labels must be the model's, with the same ids."""
    check_same_labels(model_id2label, dataset_labels, what, "the dataset")


# ----------------------------------------------------------------------------------------------- model


def build_model(model_args: ModelArguments, id2label: dict[int, str]):
    """`(model, image processor to save with it, per-sample preprocessing for the transform)`."""
    from transformers import AutoConfig

    from .configuration_rvernet import RveRNetConfig
    from .image_processing_rvernet import RveRNetImageProcessor
    from .modeling_rvernet import RveRNetForImageClassification
    from .teachers import BUILTIN_LITE0, load_classifier

    revision = {"revision": model_args.model_revision}
    if model_args.model_type == "single":
        if not model_args.model_name_or_path:
            raise ValueError("--model_type single needs --model_name_or_path (e.g. efficientnet-lite0-imagenet).")
        extra = {} if model_args.model_name_or_path == BUILTIN_LITE0 else revision
        model, preprocessing = load_classifier(
            model_args.model_name_or_path, id2label, model_args.from_scratch, **extra
        )
        size = model_args.image_size or preprocessing["size"][0]
        cutouts, full_image = single_model_preprocessors(
            preprocessing,
            size,
            context_mode=model_args.context_mode or "complement",
            sam_model_name_or_path=model_args.sam_model_name_or_path or DEFAULT_SEGMENTER,
        )
        model.config.rvernet_single_view = model_args.single_view  # what it was trained on, for evaluation
        return (
            model,
            _single_model_processor(model, preprocessing, size),
            {"cutouts": cutouts, "full_image": full_image},
        )

    # Only what was asked for: a saved processor keeps its own settings otherwise.
    settings = {
        name: value
        for name, value in (
            ("sam_model_name_or_path", model_args.sam_model_name_or_path),
            ("context_mode", model_args.context_mode),
        )
        if value is not None
    }
    selection = {"token_selection": model_args.token_selection} if model_args.token_selection else {}
    if model_args.model_name_or_path:
        model = RveRNetForImageClassification.from_pretrained(model_args.model_name_or_path, **revision, **selection)
        check_labels([id2label[i] for i in sorted(id2label)], model.config.id2label, model_args.model_name_or_path)
        processor = RveRNetImageProcessor.from_pretrained(model_args.model_name_or_path, **revision, **settings)
        return model, with_token_grid(processor, model), {"cutouts": processor}
    label2id = label2id_of(id2label)

    def scratch_tower_config(path):
        """A random-init tower's config; its head is raised to the label count so that it is no bottleneck."""
        config = AutoConfig.from_pretrained(path, **revision)
        wanted = model_args.tower_num_labels or max(config.num_labels, len(id2label))
        if config.num_labels != wanted:
            config.num_labels = wanted
        return config

    scratch = {
        name: model_args.from_scratch or flag
        for name, flag in (("roi", model_args.roi_from_scratch), ("context", model_args.context_from_scratch))
    }
    if scratch["roi"] != scratch["context"]:  # one pretrained tower, one random-init tower
        from .modeling_rvernet import tower_class_for_config

        if model_args.fusion != "logits":
            raise ValueError("mixing a pretrained and a random-init tower is supported with --fusion logits.")
        towers = {}
        for name, path in (
            ("roi", model_args.roi_model_name_or_path),
            ("context", model_args.context_model_name_or_path),
        ):
            if scratch[name]:
                config = scratch_tower_config(path)
                towers[name] = tower_class_for_config(config)._from_config(config)
            else:
                config = AutoConfig.from_pretrained(path, **revision)
                towers[name] = tower_class_for_config(config).from_pretrained(path, **revision)
        config = RveRNetConfig.from_tower_configs(
            towers["roi"].config,
            towers["context"].config,
            fusion=model_args.fusion,
            fusion_hidden_size=model_args.fusion_hidden_size,
            id2label=id2label,
            label2id=label2id,
            **selection,
        )
        model = RveRNetForImageClassification(config, roi_model=towers["roi"], context_model=towers["context"])
    elif scratch["roi"]:
        config = RveRNetConfig.from_tower_configs(
            scratch_tower_config(model_args.roi_model_name_or_path),
            scratch_tower_config(model_args.context_model_name_or_path),
            fusion=model_args.fusion,
            fusion_hidden_size=model_args.fusion_hidden_size,
            id2label=id2label,
            label2id=label2id,
            **selection,
        )
        model = RveRNetForImageClassification(config)
    else:
        model = RveRNetForImageClassification.from_towers_pretrained(
            model_args.roi_model_name_or_path,
            model_args.context_model_name_or_path,
            id2label=id2label,
            fusion=model_args.fusion,
            fusion_hidden_size=model_args.fusion_hidden_size,
            **selection,
            roi_revision=model_args.model_revision,
            context_revision=model_args.model_revision,
        )
    size = model_args.image_size or getattr(model.config.roi_config, "image_size", None)
    check_cutout_size(model.config, size)
    if size:
        settings["size"] = {"height": int(size), "width": int(size)}
    processor = RveRNetImageProcessor.from_towers_pretrained(
        model_args.roi_model_name_or_path,
        model_args.context_model_name_or_path,
        revision=model_args.model_revision,
        **settings,
    )
    # timm towers keep their normalisation in the config (`pretrained_cfg`), not in a processor file.
    for name in ("roi", "context"):
        pretrained_cfg = getattr(getattr(model.config, f"{name}_config"), "pretrained_cfg", None) or {}
        if "mean" in pretrained_cfg and "std" in pretrained_cfg:
            setattr(processor, f"{name}_image_mean", list(pretrained_cfg["mean"]))
            setattr(processor, f"{name}_image_std", list(pretrained_cfg["std"]))
    return model, with_token_grid(processor, model), {"cutouts": processor}


def check_cutout_size(config, size: int | None) -> None:
    """Both cut-outs have one size: a ViT-family tower (position embeddings for one grid) must have been built for
    it. Refused before any work, naming the tower, instead of failing at the first step."""
    from .modeling_rvernet import SPARSE_TOWER_SPECIAL_TOKENS

    for name in ("roi", "context"):
        tower = getattr(config, f"{name}_config")
        expected = getattr(tower, "image_size", None)
        if size and tower.model_type in SPARSE_TOWER_SPECIAL_TOKENS and expected and int(expected) != int(size):
            raise ValueError(
                f"the {name} tower ({tower.model_type}) reads {expected} px images but the cut-outs would be {size} px "
                f"(--image_size, or the ROI tower's size): both cut-outs share one size; use towers of one size or "
                f"--image_size {expected}."
            )


def with_token_grid(processor, model):
    """The processor, told the towers' patch grids (when it does not know them) so that it makes the token masks:
    used by `token_selection="mask"`, ignored by dense models, and saved, so that a dense model trained here can be
    switched to sparse later with no other change."""
    if not processor.patch_size and any(model.token_patch_sizes.values()):
        processor.patch_size = model.token_patch_sizes
        processor._validate_settings()
    return processor


def _single_model_processor(model, preprocessing: dict, size: int):
    """The image processor saved with a single classifier, so that `pipeline()` and teachers read its input facts."""
    from transformers import TimmWrapperImageProcessor, ViTImageProcessor

    if getattr(model.config, "model_type", None) == "timm_wrapper":
        pretrained_cfg = dict(getattr(model.config, "pretrained_cfg", None) or {})
        pretrained_cfg.update(
            mean=tuple(preprocessing["mean"]),
            std=tuple(preprocessing["std"]),
            input_size=(3, size, size),
            crop_pct=1.0,
        )
        model.config.pretrained_cfg = pretrained_cfg
        return TimmWrapperImageProcessor(pretrained_cfg=pretrained_cfg, architecture=model.config.architecture)
    return ViTImageProcessor(
        size={"height": size, "width": size},
        image_mean=list(preprocessing["mean"]),
        image_std=list(preprocessing["std"]),
    )


# ----------------------------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> dict:
    """Run one training job; returns the final metrics (train and eval)."""
    model_args, data_args, training_args, hub_args = parse_args(argv)
    return run(model_args, data_args, training_args, hub_args)


def run(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: DistillationTrainingArguments,
    hub_args: HubArguments | None = None,
) -> dict:
    """Train and/or evaluate, then save, card and push (see the module docstring). Before any work a training run
    claims its `output_dir`: an earlier run there is resumed (`--resume_from_checkpoint True`: the newest complete
    checkpoint), replaced (`--overwrite_output_dir`) or refused, and a second run into the same folder is refused
    while this one holds its lock."""
    hub_args = hub_args or HubArguments()
    std_logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[std_logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(
        f"Process rank {training_args.process_index}, device {training_args.device}, "
        f"world size {training_args.world_size}, bf16 {training_args.bf16}, fp16 {training_args.fp16}"
    )
    if model_args.model_type not in MODEL_TYPES:
        raise ValueError(f"--model_type must be one of {MODEL_TYPES}, got {model_args.model_type!r}.")
    if training_args.device.type == "cpu":
        training_args.dataloader_pin_memory = False  # nothing to pin to (avoids a warning per dataloader)
    push_wanted = training_args.push_to_hub or hub_args.push_dry_run_dir is not None
    training_args.push_to_hub = False  # pushed once at the end, by `push_folder`, after the parity check
    if push_wanted and not training_args.hub_model_id and hub_args.push_dry_run_dir is None:
        raise ValueError("--push_to_hub needs --hub_model_id (namespace/name).")

    checkpoint, lock = claim_output_dir(training_args)
    try:
        return _run(model_args, data_args, training_args, hub_args, checkpoint, push_wanted)
    finally:
        if lock is not None:
            lock.release()


def claim_output_dir(training_args: DistillationTrainingArguments):
    """(the checkpoint to resume from or None, the folder's lock or None), decided before any work (see `run`)."""
    if not training_args.do_train:
        return None, None
    resume = training_args.resume_from_checkpoint
    latest = resume in ("True", "true", True)
    if resume and not latest:  # an explicit checkpoint folder
        reason = incomplete_reason(resume) if os.path.isdir(resume) else "it does not exist"
        if reason is not None:
            raise ValueError(f"--resume_from_checkpoint {resume} cannot be resumed from: {reason}.")
        checkpoint = resume
    elif training_args.process_index == 0:
        checkpoint = check_output_dir(
            training_args.output_dir, resume=latest, overwrite=training_args.overwrite_output_dir
        )
    else:  # the other processes only read the folder (the main one deletes, with --overwrite_output_dir)
        checkpoint = find_resumable_checkpoint(training_args.output_dir) if latest else None
    lock = None
    if training_args.process_index == 0:
        lock = OutputDirLock(training_args.output_dir, command=" ".join(sys.argv)).acquire()
    if checkpoint:
        logger.info(f"Resuming from {checkpoint}.")
    return checkpoint, lock


def _run(model_args, data_args, training_args, hub_args, checkpoint, push_wanted) -> dict:
    from .hub import push_folder, save_prompted_pipeline, verify_reload
    from .metrics import ClassificationMetrics, resolve_label_ids, save_confusion_matrix
    from .visualization import save_training_curves

    set_seed(training_args.seed)

    # ---- data, labels, model: every check happens here, before any training step
    data, layout = load_data(data_args, seed=training_args.seed)
    label_names = data["train"].features["label"].names
    id2label = normalize_id2label(label_names)
    ambiguous = [s.strip() for s in (data_args.ambiguous_labels or "").split(",") if s.strip()]
    resolve_label_ids(ambiguous, label2id_of(id2label))
    model, processor_to_save, preprocessing = build_model(model_args, id2label)
    if layout == "paired" and model_args.model_type != "rvernet":
        raise ValueError("the paired layout holds cut-outs only: it trains `--model_type rvernet`.")
    if layout == "paired" and model.config.token_selection == "mask":
        raise ValueError(
            "--token_selection mask needs ROI masks (which patches each tower reads); the paired layout holds "
            "cut-outs only. Use masks or an image folder, or --token_selection dense."
        )

    teacher = None
    if training_args.distillation_type != "none":
        teacher = load_teacher(training_args.teacher_model_name_or_path)
        check_teacher_labels(teacher.id2label, id2label, training_args.teacher_model_name_or_path)
        if layout == "paired":
            raise ValueError("distillation needs the full photos; the paired layout holds cut-outs only.")

    needs_masks = layout != "paired" and (model_args.model_type == "rvernet" or model_args.single_view != "full_image")
    if needs_masks:
        # (Under several processes, joined when the run started, each process computes its own shards.)
        # Every sample of every split is read once here, before the first step: its image, and its mask when it has
        # one (size, values, not empty); SAM makes the missing masks. Cached with the masks: a second run reuses it.
        for split in list(data):
            given = "roi_mask" in data[split].column_names and None not in data[split]["roi_mask"]
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
    if teacher is not None and training_args.cache_teacher_logits:
        with training_args.main_process_first(desc="teacher logits"):
            for split in list(data):
                data[split] = compute_teacher_logits(
                    data[split],
                    teacher,
                    batch_size=training_args.per_device_eval_batch_size,
                    device=training_args.device,
                )

    # ---- transforms
    # Augmentations are a pure function of (seed, epoch, sample index): resume and DDP see the same draws.
    data["train"] = add_sample_index(data["train"])
    transform_kwargs = {
        "flip_prob": data_args.flip_prob,
        "crop_scale": (data_args.crop_scale_min, 1.0),
        "seed": training_args.seed,
    }
    if layout == "paired":
        train_transform = PairedTransform(preprocessing["cutouts"], train=True, **transform_kwargs)
        eval_transform = PairedTransform(preprocessing["cutouts"], train=False)
    else:
        single = (
            {}
            if model_args.model_type == "rvernet"
            else {"single_view": model_args.single_view, "single_processor": preprocessing.get("full_image")}
        )
        teacher_kwargs = {}
        if teacher is not None and not training_args.cache_teacher_logits:
            teacher_kwargs = {
                "teacher_processor": teacher.input_processor(),
                "teacher_input": training_args.teacher_input,
            }
        train_transform = RveRNetTransform(
            preprocessing["cutouts"], train=True, **transform_kwargs, **single, **teacher_kwargs
        )
        eval_transform = RveRNetTransform(preprocessing["cutouts"], train=False, **single, **teacher_kwargs)
    train_dataset = data["train"].with_transform(train_transform)
    eval_dataset = data["validation"].with_transform(eval_transform)
    metrics_fn = ClassificationMetrics(id2label, ambiguous)

    trainer = RveRNetDistillationTrainer(  # with cached logits the teacher's work is done: it is not kept
        model=model,
        args=training_args,
        teacher_model=None if training_args.cache_teacher_logits else teacher,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        compute_metrics=metrics_fn,
        processing_class=processor_to_save,
        callbacks=[augmentation_epoch_callback(train_transform)],
    )

    results: dict = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        if trainer.is_world_process_zero() and model_args.model_type == "rvernet":
            save_prompted_pipeline(training_args.output_dir)
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()
        results.update(train_result.metrics)
    if training_args.do_eval:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        results.update(eval_metrics)

    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        if metrics_fn.last_result is not None:
            report = {k: metrics_fn.last_result[k] for k in ("per_class", "confusion_matrix")}
            (output_dir / "per_class_report.json").write_text(json.dumps(report, indent=2))
            save_confusion_matrix(
                metrics_fn.last_result["confusion_matrix"],
                label_names,
                output_dir / "confusion_matrix.png",
                title="evaluation",
            )
        save_training_curves(trainer.state.log_history, output_dir / "training_curves.png")
        if training_args.do_train:
            card = _model_card(
                model,
                model_args,
                data_args,
                training_args,
                hub_args,
                results,
                ambiguous,
                layout,
                sam_model=getattr(processor_to_save, "sam_model_name_or_path", None),
            )
            card.save(output_dir / "README.md")
            if push_wanted:
                verify_reload(trainer.accelerator.unwrap_model(trainer.model), output_dir)
                where = push_folder(
                    output_dir,
                    training_args.hub_model_id or output_dir.name,
                    revision=training_args.hub_revision,
                    create_pr=hub_args.hub_create_pr,
                    private=training_args.hub_private_repo,
                    token=training_args.hub_token,
                    dry_run_dir=hub_args.push_dry_run_dir,
                    sam_model_id=hub_args.hub_sam_model_id,
                )
                logger.info(f"Pushed: {where}")
                results["pushed"] = str(where)
        print(_written_summary(output_dir, results.get("pushed")), flush=True)
    # Every rank waits for the main one's writes, then the process group is torn down before the interpreter
    # exits: a live gloo group at exit can abort a rank ("terminate called without an active exception").
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return results


def _written_summary(output_dir: Path, pushed: str | None) -> str:
    """Where the run wrote what (printed at its end, as the demo does)."""
    described = [
        ("model.safetensors", "model weights (+ config.json, code files, preprocessor_config.json)"),
        ("README.md", "model card"),
        ("all_results.json", "metrics (train_results.json, eval_results.json)"),
        ("per_class_report.json", "per-class report"),
        ("confusion_matrix.png", "confusion matrix"),
        ("training_curves.png", "training curves"),
    ]
    lines = [f"[rvernet-hf train] wrote to {output_dir}:"]
    lines += [f"  {name:<24} {what}" for name, what in described if (output_dir / name).exists()]
    kept = sorted(p.name for p in output_dir.glob("checkpoint-*"))
    if kept:
        lines.append(f"  {'checkpoint-*':<24} {', '.join(kept)} (resume with --resume_from_checkpoint True)")
    if pushed:
        lines.append(f"  pushed to / dry run in   {pushed}")
    return "\n".join(lines)


def _model_card(model, model_args, data_args, training_args, hub_args, results, ambiguous, layout, sam_model=None):
    from .hub import render_model_card

    dataset = (
        hub_args.model_card_dataset or data_args.dataset_name or Path(data_args.train_dir or data_args.paired_dir).name
    )
    metrics = {
        k[len("eval_") :]: v
        for k, v in results.items()
        if k in ("eval_accuracy", "eval_macro_f1", "eval_ambiguous_f1")
    }
    if model_args.model_type == "rvernet":
        base_model = sorted(
            {model_args.roi_model_name_or_path, model_args.context_model_name_or_path}
            if not model_args.model_name_or_path
            else {model_args.model_name_or_path}
        )
    else:
        base_model = [model_args.model_name_or_path]
    base_model = [] if model_args.from_scratch else [b for b in base_model if "/" in b and not os.path.isdir(b)]
    distillation = "none"
    if training_args.distillation_type != "none":
        distillation = (
            f"{training_args.distillation_type} from `{training_args.teacher_model_name_or_path}` "
            f"(alpha {training_args.distillation_alpha}, T {training_args.distillation_temperature}, "
            f"teacher input: {training_args.teacher_input})"
        )
    effective_batch = (
        training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
    )
    training = (
        f"Trained with `rvernet-hf train` ({model_args.model_type}"
        f"{', ' + model_args.single_view if model_args.model_type == 'single' else ''}) on `{dataset}` "
        f"({layout} layout): {training_args.num_train_epochs} epochs, learning rate {training_args.learning_rate}, "
        f"effective batch {effective_batch}, seed {training_args.seed}"
        f"{', bf16' if training_args.bf16 else ', fp16' if training_args.fp16 else ''}"
        f"{', from scratch (random initialisation)' if model_args.from_scratch else ''}."
    )
    name = training_args.hub_model_id or Path(training_args.output_dir).name
    hub_datasets = (
        [data_args.dataset_name] if data_args.dataset_name and not os.path.isdir(data_args.dataset_name) else []
    )
    summary = (
        ""
        if model_args.model_type == "rvernet"
        else (
            f"A single image classifier on the `{model_args.single_view}` view, trained with rvernet-hf as a distillation "
            "teacher or a baseline for RveRNet (this checkpoint is not an RveRNet model; use it with "
            "`pipeline('image-classification')`)."
        )
    )
    return render_model_card(
        model_name=name.split("/")[-1],
        repo_id=name,
        summary=summary,
        config=model.config if model_args.model_type == "rvernet" else None,
        datasets=hub_datasets,
        base_model=base_model,
        metrics=metrics,
        dataset_name=dataset,
        sam_model=hub_args.hub_sam_model_id
        or (sam_model if sam_model and not os.path.exists(sam_model) else DEFAULT_SEGMENTER),
        distillation=distillation,
        training=training,
        ambiguous_labels=ambiguous,
    )


__all__ = [
    "DataArguments",
    "HubArguments",
    "ModelArguments",
    "build_model",
    "check_label_range",
    "check_labels",
    "load_data",
    "main",
    "run",
]
