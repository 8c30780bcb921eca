# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The training job's arguments: `ModelArguments`, `DataArguments`, `HubArguments` (plus transformers'
`TrainingArguments`, extended by `DistillationTrainingArguments`), parsed from the command line or one JSON file."""

import json
import math
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..distillation import DistillationTrainingArguments
from ..paths_rvernet import check_existing_path, check_local_path
from ..perturbations import parse_perturbations


MODEL_TYPES = ("rvernet", "single")
DATA_LAYOUTS = ("auto", "imagefolder", "segmentation", "paired", "hub")
# The layout each data source is read in; `--data_layout segmentation` reads a --dataset_name as label maps.
SOURCE_LAYOUTS = {"dataset_name": ("hub", "segmentation"), "train_dir": ("imagefolder",), "paired_dir": ("paired",)}


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
    cutout_style: str | None = field(
        default=None,
        metadata={
            "help": "What a cut-out shows where it hides: fill (a constant, the paper's), blur or dim. Default: the "
            "--model_name_or_path processor's, else fill.",
            "choices": ["fill", "blur", "dim"],
        },
    )
    token_keep_threshold: float | None = field(
        default=None,
        metadata={
            "help": "With --token_selection mask: the share of a patch its region must cover for the tower to read "
            "it (0: any overlap). Default: the --model_name_or_path processor's, else 0."
        },
    )
    token_margin: int | None = field(
        default=None,
        metadata={
            "help": "With --token_selection mask: a ring of this many patches around each region is read too. "
            "Default: the --model_name_or_path processor's, else 0."
        },
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of the checkpoints."})
    freeze_towers: bool = field(
        default=False,
        metadata={
            "help": "Train the fusion head only: the towers keep their weights and batch-norm statistics bit for bit "
            "(evaluation mode) and the optimizer holds the head alone, as the official model's `freeze()`."
        },
    )
    recipe: str | None = field(
        default=None,
        metadata={
            "help": "A preset of training settings, each one you do not give yourself: paper = the official code's "
            "(Adam, lr 4e-3, 10 %% linear warm-up then cosine decay stepped per optimizer step, batch 50 per device, "
            "30 epochs, horizontal flip 0.5 and no random crop, 224 px).",
            "choices": ["paper"],
        },
    )


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
    mask_augmentation: float = field(
        default=0.0,
        metadata={
            "help": "Probability that a training sample's mask is perturbed (eroded, dilated, shifted, its box, a "
            "disk, a ragged edge) before its cut-outs: training for the masks segmenters and clicks give. 0: off."
        },
    )
    mask_perturbations: str = field(
        default="erode:0.1,dilate:0.1,shift:0.1,box,disk,noise:0.1",
        metadata={"help": "What --mask_augmentation draws from (as `rvernet-hf evaluate --mask_perturbations`)."},
    )

    decoded_cache_mb: float = field(
        default=1024,
        metadata={
            "help": "Photos and masks kept decoded in memory after their first read (MiB for the whole process, "
            "shared by its dataloader workers): later epochs skip the image decode; results are identical. 0: off."
        },
    )

    def __post_init__(self):
        # Checked when parsed, before any data is read.
        if not (self.decoded_cache_mb >= 0 and math.isfinite(self.decoded_cache_mb)):
            raise ValueError(f"--decoded_cache_mb must be a size in MiB >= 0, got {self.decoded_cache_mb!r}.")
        if not 0.0 <= self.mask_augmentation <= 1.0:
            raise ValueError(f"--mask_augmentation must be a probability in [0, 1], got {self.mask_augmentation!r}.")
        parse_perturbations(self.mask_perturbations, training=True)

    mask_cache_dir: str | None = field(default=None, metadata={"help": "Where SAM mask shards are cached."})
    on_bad_samples: str = field(
        default="raise",
        metadata={
            "help": "raise or skip unreadable samples when computing masks (--on_error, the name `masks` used, too).",
            "choices": ["raise", "skip"],
            "aliases": ["--on_error"],
        },
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


# Every argument that names a checkpoint or a dataset (a Hub id or a local path): a local path among them must exist
# (checked before any Hub call or any work, so that `./typo` is named as missing rather than reported as a Hub
# failure).
PATH_ARGUMENTS = (
    "model_name_or_path",
    "roi_model_name_or_path",
    "context_model_name_or_path",
    "sam_model_name_or_path",
    "dataset_name",
    "teacher_model_name_or_path",
)
# Arguments that can only be local (image and mask folders, files): they must exist, whatever they look like (a
# typo'd masks folder would otherwise leave every mask to the segmenter without a word).
LOCAL_ARGUMENTS = (
    "train_dir",
    "validation_dir",
    "train_masks_dir",
    "validation_masks_dir",
    "paired_dir",
    "id2label_file",
)


def check_paths(*argument_groups) -> None:
    """Refuse, naming the option, a path-like argument (see `paths_rvernet.looks_like_local_path`) that does not
    exist, and any local-only argument (`LOCAL_ARGUMENTS`) that does not exist."""
    for group in argument_groups:
        for name in PATH_ARGUMENTS:
            check_local_path(getattr(group, name, None), f"--{name}")
        for name in LOCAL_ARGUMENTS:
            check_existing_path(getattr(group, name, None), f"--{name}")


# `--recipe NAME`: training settings as a preset. The paper's is the official code's `train_RveRNet.py` and
# `train_config_FoodSeg103.yaml` (Adam = AdamW without weight decay; its warm-up and cosine decay stepped per
# optimizer step, as its `WarmupCosineSchedule` counts them, not once per epoch as its loop called it).
RECIPES = {
    "paper": {
        "learning_rate": 4e-3,
        "optim": "adamw_torch",
        "weight_decay": 0.0,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,
        "per_device_train_batch_size": 50,
        "num_train_epochs": 30,
        "flip_prob": 0.5,
        "crop_scale_min": 1.0,
        "image_size": 224,
    }
}


def with_recipe(argv: list[str]) -> list[str]:
    """The command line with its recipe's settings put before its own (argparse keeps an option's last value: what
    is given on the command line wins)."""
    name = next((argv[i + 1] for i, token in enumerate(argv[:-1]) if token == "--recipe"), None)
    name = name or next((token.split("=", 1)[1] for token in argv if token.startswith("--recipe=")), None)
    if name not in RECIPES:
        return argv  # none, or a name argparse refuses with the choices
    return [*(token for key, value in RECIPES[name].items() for token in (f"--{key}", str(value))), *argv]


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser((ModelArguments, DataArguments, DistillationTrainingArguments, HubArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(os.path.abspath(argv[0]), encoding="utf-8") as handle:
            given = json.load(handle)
        return parser.parse_dict({**RECIPES.get(given.get("recipe"), {}), **given})
    return parser.parse_args_into_dataclasses(args=with_recipe(argv))
