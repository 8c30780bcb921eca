# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""A checkpoint of the official RveRNet code (github.com/Seonwhee-Genome/RveRNet, MIT) as a folder of this package:
`convert_original_checkpoint(ckpt, out, roi_module=..., extra_roi_module=..., num_labels=...)` and `rvernet-hf
convert-original`. The folder loads with `from_pretrained`, runs in `pipeline()`, `predict`, `evaluate`, `export` and
the app, and its processor makes the official inputs (the cut-outs at the photo's size, PIL's bicubic letterbox with
grey 125, values in [0, 1]).

The official model, `RveRNet(backbone1, backbone2, input_size, num_classes)` in its `RveRNets/models.py`, holds two
ImageNet classifiers with their 1000-class heads (`roi_module`, `extra_roi_module`), concatenates their logits, and
classifies them with `integrated_fc1` (-> 640), ReLU and `integrated_fc2`, then `LogSoftmax`: this package's
`fusion="logits"` RveRNet, whose logits are the official log-probabilities before `log_softmax`. Its backbones, by
name: `mnet` torchvision's `mobilenet_v2` (here transformers' MobileNetV2 with torchvision's padding and batch-norm
epsilon: the same outputs), `vit` torchvision's `vit_b_16` (here transformers' ViT, the packed attention projection
split into query, key and value), `deit` transformers' `ViTForImageClassification` (facebook/deit-base-patch16-224)
and `deit-dist` transformers' `DeiTForImageClassification` (facebook/deit-base-distilled-patch16-224, the class head
only): those two as they are. The towers' shapes are the ImageNet checkpoints' own; nothing is downloaded.
"""

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import torch
from transformers.image_utils import PILImageResampling
from transformers.utils import logging

from .errors import RveRNetError


logger = logging.get_logger(__name__)

OFFICIAL_BACKBONES = {
    "mnet": "torchvision mobilenet_v2",
    "vit": "torchvision vit_b_16",
    "deit": "transformers ViTForImageClassification (facebook/deit-base-patch16-224)",
    "deit-dist": "transformers DeiTForImageClassification (facebook/deit-base-distilled-patch16-224, class head)",
}
# What each backbone's keys start with in the official state dict (after `roi_module.` / `extra_roi_module.`).
_KEY_PREFIXES = {"mnet": ("features.", "classifier."), "vit": ("class_token", "conv_proj.", "encoder.", "heads.")}
_KEY_PREFIXES.update({"deit": ("vit.", "classifier."), "deit-dist": ("deit.", "classifier.")})
OFFICIAL_SOURCE = "https://github.com/Seonwhee-Genome/RveRNet"
FUSION_HIDDEN_SIZE = 640  # `integrated_fc1`'s width


class OfficialCheckpointError(RveRNetError, ValueError):
    """A file that is not a checkpoint of the official RveRNet code for the backbones named (a `ValueError` too)."""


# ---------------------------------------------------------------------------------------------------- backbones


def backbone_config(name: str, input_size: int = 224):
    """The tower config of an official backbone, from the ImageNet checkpoint's known shapes (no download)."""
    from transformers import DeiTConfig, MobileNetV2Config, ViTConfig

    vit_b = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
    vit_b.update(image_size=input_size, patch_size=16, num_labels=1000, hidden_act="gelu", qkv_bias=True)
    if name == "deit":
        return ViTConfig(**vit_b, layer_norm_eps=1e-12, architectures=["ViTForImageClassification"])
    if name == "deit-dist":
        return DeiTConfig(**vit_b, layer_norm_eps=1e-12, architectures=["DeiTForImageClassification"])
    if name == "vit":  # torchvision's layer norms use eps 1e-6
        return ViTConfig(**vit_b, layer_norm_eps=1e-6, architectures=["ViTForImageClassification"])
    if name == "mnet":  # torchvision's padding (symmetric) and batch-norm epsilon (1e-5), ReLU6, 1280 features
        return MobileNetV2Config(
            image_size=input_size,
            num_labels=1000,
            tf_padding=False,
            layer_norm_eps=1e-5,
            classifier_dropout_prob=0.2,
            architectures=["MobileNetV2ForImageClassification"],
        )
    raise _unknown_backbone(name)


def _unknown_backbone(name: str) -> OfficialCheckpointError:
    return OfficialCheckpointError(
        f"unknown backbone {name!r}: the official code's backbones are {', '.join(OFFICIAL_BACKBONES)} "
        f"({'; '.join(f'{k}: {v}' for k, v in OFFICIAL_BACKBONES.items())})."
    )


def _mobilenet_v2_weights(weights: dict) -> dict:
    """torchvision `mobilenet_v2` keys -> transformers `MobileNetV2ForImageClassification` keys (same layers)."""

    def layer(source: str, target: str, conv: str, norm: str) -> dict:
        moved = {f"mobilenet_v2.{target}.convolution.weight": weights[f"{source}{conv}.weight"]}
        for part in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            key = f"{source}{norm}.{part}"
            if key in weights:
                moved[f"mobilenet_v2.{target}.normalization.{part}"] = weights[key]
        return moved

    converted = {**layer("features.0.", "conv_stem.first_conv", "0", "1")}
    converted.update(layer("features.1.conv.", "conv_stem.conv_3x3", "0.0", "0.1"))
    converted.update(layer("features.1.conv.", "conv_stem.reduce_1x1", "1", "2"))
    for block in range(16):  # features 2-17: expand 1x1, depthwise 3x3, project 1x1
        source, target = f"features.{block + 2}.conv.", f"layer.{block}"
        converted.update(layer(source, f"{target}.expand_1x1", "0.0", "0.1"))
        converted.update(layer(source, f"{target}.conv_3x3", "1.0", "1.1"))
        converted.update(layer(source, f"{target}.reduce_1x1", "2", "3"))
    converted.update(layer("features.18.", "conv_1x1", "0", "1"))
    converted["classifier.weight"], converted["classifier.bias"] = (
        weights["classifier.1.weight"],
        weights["classifier.1.bias"],
    )
    return converted


def _vit_b_16_weights(weights: dict, layers: int = 12) -> dict:
    """torchvision `vit_b_16` keys -> transformers `ViTForImageClassification` keys, as its checkpoints on the Hub
    name them; the packed attention projection (`in_proj`, query | key | value) split in three."""
    converted = {
        "vit.embeddings.cls_token": weights["class_token"],
        "vit.embeddings.position_embeddings": weights["encoder.pos_embedding"],
        "vit.embeddings.patch_embeddings.projection.weight": weights["conv_proj.weight"],
        "vit.embeddings.patch_embeddings.projection.bias": weights["conv_proj.bias"],
        "vit.layernorm.weight": weights["encoder.ln.weight"],
        "vit.layernorm.bias": weights["encoder.ln.bias"],
        "classifier.weight": weights["heads.head.weight"],
        "classifier.bias": weights["heads.head.bias"],
    }
    for i in range(layers):
        source, target = f"encoder.layers.encoder_layer_{i}.", f"vit.encoder.layer.{i}."
        query, key, value = weights[f"{source}self_attention.in_proj_weight"].chunk(3)
        query_bias, key_bias, value_bias = weights[f"{source}self_attention.in_proj_bias"].chunk(3)
        renamed = {
            "attention.attention.query": (query, query_bias),
            "attention.attention.key": (key, key_bias),
            "attention.attention.value": (value, value_bias),
            "attention.output.dense": (
                weights[f"{source}self_attention.out_proj.weight"],
                weights[f"{source}self_attention.out_proj.bias"],
            ),
            "layernorm_before": (weights[f"{source}ln_1.weight"], weights[f"{source}ln_1.bias"]),
            "layernorm_after": (weights[f"{source}ln_2.weight"], weights[f"{source}ln_2.bias"]),
            "intermediate.dense": (weights[f"{source}mlp.0.weight"], weights[f"{source}mlp.0.bias"]),
            "output.dense": (weights[f"{source}mlp.3.weight"], weights[f"{source}mlp.3.bias"]),
        }
        for name, (weight, bias) in renamed.items():
            converted[f"{target}{name}.weight"], converted[f"{target}{name}.bias"] = weight, bias
    return converted


def load_tower(name: str, weights: dict, input_size: int, which: str):
    """An official backbone's weights (its keys without `roi_module.`) as a tower of this package, checked: every
    weight of the tower given, none left over, every shape the tower's; the first mismatch is named."""
    from .towers_rvernet import tower_class_for_config

    if name not in OFFICIAL_BACKBONES:
        raise _unknown_backbone(name)
    foreign = [key for key in weights if not key.startswith(_KEY_PREFIXES[name])]  # in the file's order
    if foreign:
        raise OfficialCheckpointError(
            f"{which}: the weight {foreign[0]!r} is not one of a {name} backbone ({OFFICIAL_BACKBONES[name]}), whose "
            f"keys start with {' or '.join(_KEY_PREFIXES[name])}: is --{which} the right backbone?"
        )
    try:
        converted = {"mnet": _mobilenet_v2_weights, "vit": _vit_b_16_weights}.get(name, dict)(weights)
    except KeyError as error:
        raise OfficialCheckpointError(f"{which}: the {name} backbone's weight {error.args[0]!r} is missing.") from None
    config = backbone_config(name, input_size)
    tower, info = tower_class_for_config(config).from_pretrained(
        None, config=config, state_dict=converted, output_loading_info=True, ignore_mismatched_sizes=True
    )
    expected = tower.state_dict()
    problems = [
        *(
            f"the weight {key!r} has shape {tuple(got)}, but the {name} tower's is {tuple(want)}"
            for key, got, want in sorted(info["mismatched_keys"])
        ),
        *(
            f"the weight {key!r} (shape {tuple(expected[key].shape)}) is missing"
            for key in sorted(info["missing_keys"])
        ),
        *(f"the weight {key!r} is not one of the {name} tower's" for key in sorted(info["unexpected_keys"])),
    ]
    if problems:
        raise OfficialCheckpointError(
            f"{which} ({name}, {OFFICIAL_BACKBONES[name]}, {input_size} px): {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + ". Is it the right backbone and input size?"
        )
    return tower.eval()


# ---------------------------------------------------------------------------------------------------- the file


def read_official_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The official code's `torch.save(model.state_dict())`, read with `torch.load(..., weights_only=True)` (a pickle
    that holds code is refused, never run), its DataParallel prefix `module.` removed when every key has it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"the checkpoint {path} does not exist (a file saved by the official code's torch.save)."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OfficialCheckpointError(
            f"{path}: not a plain state dict of tensors ({reason}); it is refused unread: a checkpoint of the "
            "official code holds tensors only, and a pickle that holds code would run it."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OfficialCheckpointError(
            f"{path}: not a readable torch checkpoint (truncated or damaged?): {reason}"
        ) from None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OfficialCheckpointError(
            f"{path}: expected a state dict (parameter name -> tensor), got {type(state).__name__}."
        )
    if all(key.startswith("module.") for key in state):  # saved from nn.DataParallel
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def split_official(state: dict[str, torch.Tensor], path: str = "the checkpoint") -> tuple[dict, dict, dict]:
    """(ROI backbone, context backbone, fusion head) weights of the official model, each without its prefix."""
    parts = {"roi_module.": {}, "extra_roi_module.": {}, "integrated_fc": {}}
    for key, value in state.items():
        prefix = next((p for p in parts if key.startswith(p)), None)
        if prefix is None:
            raise OfficialCheckpointError(
                f"{path}: the weight {key!r} is not the official RveRNet's (roi_module.*, extra_roi_module.*, "
                "integrated_fc1.*, integrated_fc2.*)."
            )
        parts[prefix][key[len(prefix) if prefix != "integrated_fc" else 0 :]] = value
    for prefix, found in parts.items():
        if not found:
            raise OfficialCheckpointError(
                f"{path}: no {prefix.rstrip('.')}* weights: not an official RveRNet state dict."
            )
    return parts["roi_module."], parts["extra_roi_module."], parts["integrated_fc"]


# ---------------------------------------------------------------------------------------------------- the folder


def official_processor(input_size: int = 224, **settings):
    """An image processor that makes the official code's inputs: the two cut-outs at the photo's size (the hidden
    part black), each letterboxed as its `ResizeAndPad` does (the longest side to `input_size` with PIL's default
    bicubic resize, the short side floored, grey 125, the odd pad pixel on the left/top), then `ToTensor` (values in
    [0, 1], no mean/std)."""
    from .image_processing_rvernet import RveRNetImageProcessor

    official = {
        "size": {"height": input_size, "width": input_size},
        "resize_mode": "letterbox_official",
        "resample": PILImageResampling.BICUBIC,
        "pad_value": 125,
        "do_normalize": False,
        "fill_value": 0.0,
        "cut_before_resize": True,
        "context_mode": "complement",
    }
    return RveRNetImageProcessor(**{**official, **settings})


def convert_original_checkpoint(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    roi_module: str,
    extra_roi_module: str,
    num_labels: int | None = None,
    id2label: dict[int, str] | None = None,
    input_size: int = 224,
):
    """Convert the official code's checkpoint (`RveRNet(backbone1, backbone2, input_size, num_classes)` saved with
    `torch.save(model.state_dict())`, from `nn.DataParallel` or not) into `output_dir`: weights, config, code, the
    official preprocessing as the processor, and a card naming the source. The backbones are named as the official
    code names them (`OFFICIAL_BACKBONES`); labels by count (`num_labels`) or by name (`id2label`, ids 0..n-1 as the
    official class folders sorted).

    Everything is checked before the folder appears: the file is read as tensors only, every weight must fit the
    named backbones (the first misfit is named), the fusion head must have the class count given, and the folder
    reloads to the same logits. `output_dir` must not exist; a failed conversion leaves nothing behind."""
    from .configuration_rvernet import RveRNetConfig
    from .hub import export_model, render_model_card, verify_reload
    from .labels import normalize_id2label
    from .modeling_rvernet import RveRNetForImageClassification

    output_dir = Path(output_dir)
    if output_dir.exists():
        raise ValueError(f"{output_dir} exists: finished work is never overwritten; choose another folder.")
    for which, name in (("roi_module", roi_module), ("extra_roi_module", extra_roi_module)):
        if name not in OFFICIAL_BACKBONES:
            raise OfficialCheckpointError(f"--{which}: {_unknown_backbone(name)}")
    if (num_labels is None) == (id2label is None):
        raise ValueError("give the classes: num_labels (a count) or id2label (their names), one of the two.")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"input_size must be a whole number of pixels >= 32, got {input_size!r}.")
    labels = normalize_id2label(id2label) if id2label is not None else {i: f"LABEL_{i}" for i in range(num_labels)}
    state = read_official_checkpoint(checkpoint)
    roi_weights, context_weights, fusion = split_official(state, str(checkpoint))
    roi = load_tower(roi_module, roi_weights, input_size, "roi_module")
    context = load_tower(extra_roi_module, context_weights, input_size, "extra_roi_module")
    config = RveRNetConfig(
        roi_config=roi.config,
        context_config=context.config,
        fusion="logits",
        fusion_hidden_size=FUSION_HIDDEN_SIZE,
        id2label=labels,
        label2id={name: i for i, name in labels.items()},
    )
    model = RveRNetForImageClassification(config, roi_model=roi, context_model=context).eval()
    _load_fusion_head(model, fusion, len(labels), str(checkpoint))
    staging = output_dir.with_name(f".{output_dir.name}.incomplete-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        export_model(model, staging, official_processor(input_size))
        card = render_model_card(
            model_name=output_dir.name,
            config=config,
            summary=(
                f"An RveRNet converted from a checkpoint of the official code ({OFFICIAL_SOURCE}, "
                f"`{Path(checkpoint).name}`): ROI module `{roi_module}` ({OFFICIAL_BACKBONES[roi_module]}), extra-ROI "
                f"module `{extra_roi_module}` ({OFFICIAL_BACKBONES[extra_roi_module]}), {input_size} px, the official "
                "preprocessing (cut-outs at the photo's size, bicubic letterbox, grey 125, no normalisation)."
            ),
            training="Trained with the official code; converted by `rvernet-hf convert-original`.",
        )
        card.save(staging / "README.md")
        verify_reload(model, staging)
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(f"converted {checkpoint} -> {output_dir}")
    return output_dir


def _load_fusion_head(model, fusion: dict, num_labels: int, path: str) -> None:
    """`integrated_fc1` / `integrated_fc2` into the fusion head (`dense` / `out_proj`), shapes checked."""
    head = model.classifier
    expected = {
        "integrated_fc1.weight": head.dense.weight.shape,
        "integrated_fc1.bias": head.dense.bias.shape,
        "integrated_fc2.weight": head.out_proj.weight.shape,
        "integrated_fc2.bias": head.out_proj.bias.shape,
    }
    for key, shape in expected.items():
        if key not in fusion:
            raise OfficialCheckpointError(f"{path}: the fusion head's weight {key!r} is missing.")
        if tuple(fusion[key].shape) != tuple(shape):
            hint = (
                f" The checkpoint classifies {fusion[key].shape[0]} classes; {num_labels} were given."
                if key.startswith("integrated_fc2") and fusion[key].shape[1:] == shape[1:]
                else ""
            )
            raise OfficialCheckpointError(
                f"{path}: the fusion head's {key} has shape {tuple(fusion[key].shape)}, expected {tuple(shape)}.{hint}"
            )
    extra = sorted(set(fusion) - set(expected))
    if extra:
        raise OfficialCheckpointError(f"{path}: the weight {extra[0]!r} is not one of the fusion head's.")
    with torch.no_grad():
        head.dense.weight.copy_(fusion["integrated_fc1.weight"])
        head.dense.bias.copy_(fusion["integrated_fc1.bias"])
        head.out_proj.weight.copy_(fusion["integrated_fc2.weight"])
        head.out_proj.bias.copy_(fusion["integrated_fc2.bias"])


__all__ = [
    "OFFICIAL_BACKBONES",
    "OfficialCheckpointError",
    "backbone_config",
    "convert_original_checkpoint",
    "official_processor",
    "read_official_checkpoint",
]
