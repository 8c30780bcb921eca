# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""RveRNet's towers: which transformers class builds a tower from its config, how wide its output is, and which
attention implementations (and `torch.compile` modes) both towers support. Uploaded next to the weights with the
modeling code (remote code): imports only torch, transformers and its sibling `configuration_rvernet`.
"""

import copy

import torch
import transformers
from torch import nn
from transformers import AutoModelForImageClassification, PreTrainedConfig, PreTrainedModel

from .configuration_rvernet import RveRNetConfig


def tower_class_for_config(config: PreTrainedConfig) -> type[PreTrainedModel]:
    """The image-classification class a tower is built with.

    A checkpoint whose `architectures` names a transformers image-classification class keeps it (so that
    `facebook/deit-base-distilled-patch16-224` is a `DeiTForImageClassificationWithTeacher`, both heads), where
    `AutoModelForImageClassification` alone would build a plain `DeiTForImageClassification`.
    """
    for name in config.architectures or ():
        candidate = getattr(transformers, name, None)
        if (
            isinstance(candidate, type)
            and issubclass(candidate, PreTrainedModel)
            and "ForImageClassification" in name
            and isinstance(config, candidate.config_class)
        ):
            return candidate
    mapping = AutoModelForImageClassification._model_mapping
    if type(config) not in mapping:
        raise ValueError(
            f"A {type(config).__name__} (model_type {config.model_type!r}) has no image-classification model in "
            "transformers: RveRNet towers must be image classifiers (DeiT, ViT, ConvNeXt, ResNet, MobileNetV2, "
            "Swin, timm_wrapper, ...)."
        )
    model_class = mapping[type(config)]
    return model_class[0] if isinstance(model_class, (list, tuple)) else model_class


def tower_build_class(config: PreTrainedConfig) -> type[PreTrainedModel]:
    """The class `build_tower` builds for this config (timm in features mode is a `TimmWrapperModel`)."""
    if config.model_type == "timm_wrapper" and config.num_labels == 0:
        # timm's classifier refuses `num_labels=0`; its base model returns the same pooled features.
        return transformers.TimmWrapperModel
    return tower_class_for_config(config)


def build_tower(config: PreTrainedConfig) -> PreTrainedModel:
    """A tower with fresh weights, built from its config (weights arrive later through `from_pretrained`)."""
    return tower_build_class(config)._from_config(config)


def tower_output_size(tower: PreTrainedModel) -> int:
    """Width of what a tower hands to the fusion head: `num_labels`, or the pooled-feature width when the head is
    removed (`num_labels == 0`). The feature width is read off the head that a one-label copy of the tower would
    have, built on the meta device (no memory, no compute), so every family is handled the same way."""
    if tower.config.num_labels > 0:
        return tower.config.num_labels
    timm_model = getattr(tower, "timm_model", None)
    if timm_model is not None:
        return timm_model.num_features
    probe_config = copy.deepcopy(tower.config)
    probe_config.num_labels = 1
    with torch.device("meta"):
        probe = type(tower)(probe_config)
    heads = [m for m in probe.modules() if isinstance(m, nn.Linear) and m.out_features == 1]
    if not heads:
        raise ValueError(f"Cannot find the classification head of {type(tower).__name__} to read its feature size.")
    return heads[-1].in_features


def tower_records_attentions(tower: PreTrainedModel) -> bool:
    """Whether a tower can return attention maps (transformers' ViT-family and Swin towers; not CNNs, not timm)."""
    return "attentions" in (getattr(tower, "_can_record_outputs", None) or {})


# (name in messages, sub-config key, module attribute) of the two towers.
TOWERS = (("ROI", "roi_config", "roi_model"), ("context", "context_config", "context_model"))
# Which support flag of a tower class an attention implementation needs ("eager" needs none).
_ATTN_SUPPORT_FLAGS = {
    "sdpa": "_supports_sdpa",
    "flex_attention": "_supports_flex_attn",
    "flash": "_supports_flash_attn",
}
# Tower classes that do not declare `_can_compile_fullgraph` but compile with `fullgraph=True` inside RveRNet
# (tests/test_modeling_rvernet.py::test_torch_compile_fullgraph compiles each of them).
FULLGRAPH_TESTED_TOWERS = (
    "ResNetForImageClassification",
    "ConvNextForImageClassification",
    "MobileNetV2ForImageClassification",
)


def supported_attn_implementations(model_class: type[PreTrainedModel]) -> list[str]:
    """The attention implementations a tower class can run, as `attn_implementation` values."""
    supported = ["eager"]
    if model_class._supports_sdpa:
        supported.append("sdpa")
    if model_class._supports_flex_attn:
        supported.append("flex_attention")
    if model_class._supports_flash_attn:
        supported.append("flash_attention_2 / flash_attention_3 / Hub kernels")
    return supported


def check_tower_attn_implementation(config: RveRNetConfig, requested: str | dict | None) -> None:
    """Refuse, naming the tower, an explicit `attn_implementation` request that one tower cannot honour.

    `requested` is what `from_pretrained(attn_implementation=...)` or `set_attn_implementation` received: one name for
    both towers, or a dict per sub-config (`{"roi_config": "sdpa", "context_config": "eager"}`); `None` or a tower
    left out of the dict keeps that tower's default (SDPA where it has it, else eager).
    """
    for name, key, _ in TOWERS:
        wanted = requested.get(key) if isinstance(requested, dict) else requested
        if isinstance(wanted, dict):
            wanted = wanted.get("")
        if wanted is None:
            continue
        family = wanted.removeprefix("paged|")
        family = family if family in ("eager", "sdpa", "flex_attention") else "flash"
        tower_class = tower_build_class(getattr(config, key))
        if family != "eager" and not getattr(tower_class, _ATTN_SUPPORT_FLAGS[family]):
            raise ValueError(
                f"attn_implementation={wanted!r} cannot be used by the {name} tower ({tower_class.__name__}): it "
                f"supports {supported_attn_implementations(tower_class)}. Ask per tower instead, e.g. "
                f"attn_implementation={{'{key}': 'eager', ...}} (keys 'roi_config' and 'context_config')."
            )


__all__ = [
    "TOWERS",
    "build_tower",
    "check_tower_attn_implementation",
    "supported_attn_implementations",
    "tower_build_class",
    "tower_class_for_config",
    "tower_output_size",
    "tower_records_attentions",
]
