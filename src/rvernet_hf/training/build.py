# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Building what the training job trains: the model (RveRNet from two towers or a checkpoint, or a single classifier),
the image processor saved with it, and the per-sample preprocessing its transforms use."""

from ..data import DecodedCache, PairedTransform, RveRNetTransform, single_model_preprocessors
from ..distillation import check_teacher_labels, load_teacher
from ..labels import label2id_of
from ..segmenters_rvernet import DEFAULT_SEGMENTER
from .arguments import ModelArguments
from .splits import check_labels


def build_model(model_args: ModelArguments, id2label: dict[int, str]):
    """`(model, image processor to save with it, per-sample preprocessing for the transform)`: a single classifier
    (`--model_type single`), an RveRNet checkpoint (`--model_name_or_path`), or an RveRNet from two towers."""
    if model_args.model_type == "single":
        if model_args.cutout_style not in (None, "fill"):
            raise ValueError("--cutout_style is RveRNet's: a single classifier's cut-outs are filled.")
        if model_args.freeze_towers:
            raise ValueError(
                "--freeze_towers is RveRNet's (train its fusion head only): a single classifier has none."
            )
        return _single_classifier(model_args, id2label)
    model, processor, preprocessing = _build_rvernet(model_args, id2label)
    if model_args.freeze_towers:
        model.freeze_towers()
    return model, processor, preprocessing


def _build_rvernet(model_args: ModelArguments, id2label: dict[int, str]):
    # Only what was asked for: a saved processor keeps its own settings otherwise.
    settings = {
        name: value
        for name, value in (
            ("sam_model_name_or_path", model_args.sam_model_name_or_path),
            ("context_mode", model_args.context_mode),
            ("cutout_style", model_args.cutout_style),
            ("token_keep_threshold", model_args.token_keep_threshold),
            ("token_margin", model_args.token_margin),
        )
        if value is not None
    }
    selection = {"token_selection": model_args.token_selection} if model_args.token_selection else {}
    if model_args.model_name_or_path:
        return _rvernet_checkpoint(model_args, id2label, settings, selection)
    model = _rvernet_from_towers(model_args, id2label, selection)
    size = model_args.image_size or getattr(model.config.roi_config, "image_size", None)
    check_cutout_size(model.config, size)
    if size:
        settings["size"] = {"height": int(size), "width": int(size)}
    processor = _towers_processor(model_args, model, settings)
    return model, with_token_grid(processor, model), {"cutouts": processor}


def _single_classifier(model_args: ModelArguments, id2label: dict[int, str]):
    from ..teachers import BUILTIN_LITE0, load_classifier

    if not model_args.model_name_or_path:
        raise ValueError("--model_type single needs --model_name_or_path (e.g. efficientnet-lite0-imagenet).")
    extra = {} if model_args.model_name_or_path == BUILTIN_LITE0 else {"revision": model_args.model_revision}
    model, preprocessing = load_classifier(model_args.model_name_or_path, id2label, model_args.from_scratch, **extra)
    size = model_args.image_size or preprocessing["size"][0]
    cutouts, full_image = single_model_preprocessors(
        preprocessing,
        size,
        context_mode=model_args.context_mode or "complement",
        sam_model_name_or_path=model_args.sam_model_name_or_path or DEFAULT_SEGMENTER,
    )
    model.config.rvernet_single_view = model_args.single_view  # what it was trained on, for evaluation
    processor = _single_model_processor(model, preprocessing, size)
    return model, processor, {"cutouts": cutouts, "full_image": full_image}


def _rvernet_checkpoint(model_args: ModelArguments, id2label: dict[int, str], settings: dict, selection: dict):
    """A saved RveRNet (to continue training), with the processor saved beside it."""
    from ..image_processing_rvernet import RveRNetImageProcessor
    from ..modeling_rvernet import RveRNetForImageClassification

    path, revision = model_args.model_name_or_path, model_args.model_revision
    model = RveRNetForImageClassification.from_pretrained(path, revision=revision, **selection)
    check_labels([id2label[i] for i in sorted(id2label)], model.config.id2label, path)
    processor = RveRNetImageProcessor.from_pretrained(path, revision=revision, **settings)
    return model, with_token_grid(processor, model), {"cutouts": processor}


def _rvernet_from_towers(model_args: ModelArguments, id2label: dict[int, str], selection: dict):
    """Two pretrained towers, two random-init towers (`--from_scratch`), or one of each (`--roi_from_scratch` /
    `--context_from_scratch`, with `--fusion logits`)."""
    from transformers import AutoConfig

    from ..configuration_rvernet import RveRNetConfig
    from ..modeling_rvernet import RveRNetForImageClassification
    from ..towers_rvernet import tower_class_for_config

    paths = {"roi": model_args.roi_model_name_or_path, "context": model_args.context_model_name_or_path}
    revision = {"revision": model_args.model_revision}
    scratch = {
        "roi": model_args.from_scratch or model_args.roi_from_scratch,
        "context": model_args.from_scratch or model_args.context_from_scratch,
    }
    fusion = {"fusion": model_args.fusion, "fusion_hidden_size": model_args.fusion_hidden_size}
    if not scratch["roi"] and not scratch["context"]:
        return RveRNetForImageClassification.from_towers_pretrained(
            paths["roi"],
            paths["context"],
            id2label=id2label,
            **fusion,
            **selection,
            roi_revision=model_args.model_revision,
            context_revision=model_args.model_revision,
        )
    if scratch["roi"] != scratch["context"] and model_args.fusion != "logits":
        raise ValueError("mixing a pretrained and a random-init tower is supported with --fusion logits.")

    def scratch_tower_config(path):
        """A random-init tower's config; its head is raised to the label count so that it is no bottleneck."""
        config = AutoConfig.from_pretrained(path, **revision)
        wanted = model_args.tower_num_labels or max(config.num_labels, len(id2label))
        if config.num_labels != wanted:
            config.num_labels = wanted
        return config

    towers = {}
    for name, path in paths.items():
        if scratch[name]:
            towers[name] = None  # built by the model from its config
        else:
            towers[name] = tower_class_for_config(AutoConfig.from_pretrained(path, **revision)).from_pretrained(
                path, **revision
            )
    configs = {
        name: scratch_tower_config(paths[name]) if towers[name] is None else towers[name].config for name in paths
    }
    config = RveRNetConfig.from_tower_configs(
        configs["roi"], configs["context"], id2label=id2label, label2id=label2id_of(id2label), **fusion, **selection
    )
    return RveRNetForImageClassification(config, roi_model=towers["roi"], context_model=towers["context"])


def _towers_processor(model_args: ModelArguments, model, settings: dict):
    """The processor of an RveRNet built from towers: each tower's normalisation from its own image processor, or
    (timm towers keep it in the config's `pretrained_cfg`, not in a processor file) from its config."""
    from ..image_processing_rvernet import RveRNetImageProcessor

    processor = RveRNetImageProcessor.from_towers_pretrained(
        model_args.roi_model_name_or_path,
        model_args.context_model_name_or_path,
        revision=model_args.model_revision,
        **settings,
    )
    for name in ("roi", "context"):
        pretrained_cfg = getattr(getattr(model.config, f"{name}_config"), "pretrained_cfg", None) or {}
        if "mean" in pretrained_cfg and "std" in pretrained_cfg:
            setattr(processor, f"{name}_image_mean", list(pretrained_cfg["mean"]))
            setattr(processor, f"{name}_image_std", list(pretrained_cfg["std"]))
    return processor


def check_cutout_size(config, size: int | None) -> None:
    """Both cut-outs have one size: a ViT-family tower (position embeddings for one grid) must have been built for
    it. Refused before any work, naming the tower, instead of failing at the first step."""
    from ..token_grid_rvernet import SPARSE_TOWER_SPECIAL_TOKENS

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
        processor.set_settings(patch_size=model.token_patch_sizes)
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


def build_teacher(training_args, id2label: dict[int, str], layout: str):
    """The frozen CNN teacher when distilling (its labels checked against the student's), else None."""
    if training_args.distillation_type == "none":
        return None
    if layout == "paired":
        raise ValueError("distillation needs the full photos; the paired layout holds cut-outs only.")
    teacher = load_teacher(training_args.teacher_model_name_or_path)
    check_teacher_labels(teacher.id2label, id2label, training_args.teacher_model_name_or_path)
    return teacher


def build_transforms(preprocessing: dict, model_args: ModelArguments, data_args, training_args, layout: str, teacher):
    """`(train transform, evaluation transform)`: rows -> model inputs (+ the teacher's input when its logits are not
    cached). The training one draws its augmentations from (seed, epoch, sample index)."""
    augmentation = {
        "flip_prob": data_args.flip_prob,
        "crop_scale": (data_args.crop_scale_min, 1.0),
        "seed": training_args.seed,
    }
    if layout == "paired":
        if data_args.mask_augmentation:
            raise ValueError(
                "--mask_augmentation perturbs masks: the paired layout has none (its cut-outs are given)."
            )
        return (
            PairedTransform(preprocessing["cutouts"], train=True, **augmentation),
            PairedTransform(preprocessing["cutouts"], train=False),
        )
    kwargs = {}
    if model_args.model_type != "rvernet":
        kwargs = {"single_view": model_args.single_view, "single_processor": preprocessing.get("full_image")}
    if teacher is not None and not training_args.cache_teacher_logits:
        kwargs.update(teacher_processor=teacher.input_processor(), teacher_input=training_args.teacher_input)
    masks = {"mask_augmentation": data_args.mask_augmentation, "mask_perturbations": data_args.mask_perturbations}
    # --decoded_cache_mb is the process's: one cache for both splits, split among its dataloader workers (each keeps
    # a copy of its own).
    cache = DecodedCache(data_args.decoded_cache_mb / max(1, training_args.dataloader_num_workers))
    return (
        RveRNetTransform(preprocessing["cutouts"], train=True, decoded_cache=cache, **augmentation, **masks, **kwargs),
        RveRNetTransform(preprocessing["cutouts"], train=False, decoded_cache=cache, **kwargs),
    )
