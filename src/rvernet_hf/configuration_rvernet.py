# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""RveRNet model configuration.

This file is uploaded next to the weights and read by the Hub's remote-code loader: it imports only
`transformers` (and the standard library), and nothing from the rest of `rvernet_hf`.
"""

import os
from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.configuration_auto import CONFIG_MAPPING


FUSION_TYPES = ("logits", "features")
TOKEN_SELECTIONS = ("dense", "mask")


class NotAnRveRNetConfig(ValueError):
    """A config file or dict that is not an RveRNet's."""


class RveRNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`RveRNetForImageClassification`]: two vision towers and a fusion head.

    The ROI tower reads the region-of-interest cut-out (everything outside the ROI mask blacked out), the context tower
    reads the complementary cut-out (the ROI blacked out), and the fusion ("integration") head decides from both.
    Each tower is any vision classification model that [`~transformers.AutoConfig`] knows (DeiT, DeiT distilled, ViT,
    ConvNeXt, ResNet, MobileNetV2, Swin, timm models through `timm_wrapper`, ...), and the two may be of different
    families. The defaults reproduce the paper's `rvernet-deit-b` shape: two DeiT-B towers, logits fusion, 640 hidden.

    Args:
        roi_config (`PreTrainedConfig` or `dict`, *optional*):
            Configuration of the ROI tower. A dict must carry a `model_type`. Defaults to a DeiT-B configuration.
        context_config (`PreTrainedConfig` or `dict`, *optional*):
            Configuration of the context (extra-ROI) tower. Defaults to a DeiT-B configuration.
        fusion (`str`, *optional*, defaults to `"logits"`):
            How the towers meet the fusion head. `"logits"` (the paper): each tower keeps its own classification
            head and the two logit vectors are concatenated. `"features"`: each tower's head is removed
            (`num_labels=0` in its sub-config) and the pooled features the head would have read are concatenated.
        fusion_hidden_size (`int`, *optional*, defaults to 640):
            Width of the fusion head's hidden layer (Linear -> ReLU -> dropout -> Linear).
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout probability after the fusion head's activation.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser of the fusion head.
        token_selection (`str`, *optional*, defaults to `"dense"`):
            What the ViT-family towers (DeiT, distilled DeiT, ViT) read. `"dense"` (the paper): every patch of their
            cut-out. `"mask"`: the ROI tower runs its encoder only over the patches that overlap the ROI and the
            context tower only over those that overlap the rest of the image (special tokens always kept), as told
            by the `roi_token_mask` / `context_token_mask` inputs that [`RveRNetImageProcessor`] makes when its
            `patch_size` is set. Same weights: a dense checkpoint loads as sparse with
            `from_pretrained(folder, token_selection="mask")`, and back. Towers of other families stay dense.
        group_by_length (`bool`, *optional*, defaults to `True`):
            With `token_selection="mask"`, a batch whose samples keep very different numbers of patches runs
            through each tower in groups of similar lengths, each padded to its own longest (the same values as one
            padded pass, less work). `False`: one pass per batch, padded to its longest sample.
        num_labels, id2label, label2id, problem_type:
            As in every transformers classification config.

    Example:

    ```python
    >>> from transformers import DeiTConfig, MobileNetV2Config
    >>> from rvernet_hf import RveRNetConfig, RveRNetForImageClassification

    >>> config = RveRNetConfig(
    ...     roi_config=MobileNetV2Config(), context_config=DeiTConfig(), id2label={0: "ketchup", 1: "chili paste"}
    ... )
    >>> model = RveRNetForImageClassification(config)
    >>> config.roi_config.model_type, config.num_labels
    ('mobilenet_v2', 2)
    ```
    """

    model_type = "rvernet"
    sub_configs_defaults = {
        "roi_config": SubConfigSpec(config_class=AutoConfig, model_type="deit"),
        "context_config": SubConfigSpec(config_class=AutoConfig, model_type="deit"),
    }

    roi_config: PreTrainedConfig | dict | None = None
    context_config: PreTrainedConfig | dict | None = None
    fusion: str = "logits"
    fusion_hidden_size: int = 640
    classifier_dropout: float | int = 0.0
    initializer_range: float = 0.02
    token_selection: str = "dense"
    group_by_length: bool = True

    def __post_init__(self, **kwargs: Any):
        # Dict sub-configs go through their class's `from_dict`, which knows each family's serialised form
        # (timm_wrapper's `num_classes`/`label_names`, for one); a plain `Config(**dict)` would not.
        for key in ("roi_config", "context_config"):
            sub_config = getattr(self, key)
            if isinstance(sub_config, dict) and "model_type" in sub_config:
                sub_config = dict(sub_config)
                config_class = CONFIG_MAPPING[sub_config.pop("model_type")]
                setattr(self, key, config_class.from_dict(sub_config))
        super().__post_init__(**kwargs)
        self.check_settings()
        if self.fusion == "features":
            # The towers' own heads are dropped: their classifier becomes an identity and the tower returns
            # the pooled features its head would have read.
            for key in ("roi_config", "context_config"):
                sub_config = getattr(self, key)
                if sub_config.num_labels != 0:
                    sub_config.num_labels = 0

    def check_settings(self) -> None:
        """Refuse, naming it, the value and what is allowed, a setting outside its domain: at construction and
        after `from_pretrained(..., key=value)` overrides (which transformers sets after construction)."""
        if self.fusion not in FUSION_TYPES:
            raise ValueError(f"`fusion` must be one of {FUSION_TYPES}, got {self.fusion!r}.")
        if self.token_selection not in TOKEN_SELECTIONS:
            raise ValueError(f"`token_selection` must be one of {TOKEN_SELECTIONS}, got {self.token_selection!r}.")
        if not isinstance(self.group_by_length, bool):
            raise ValueError(f"`group_by_length` must be True or False, got {self.group_by_length!r}.")
        if isinstance(self.fusion_hidden_size, bool) or not isinstance(self.fusion_hidden_size, int):
            raise ValueError(f"`fusion_hidden_size` must be a positive integer, got {self.fusion_hidden_size!r}.")
        if self.fusion_hidden_size < 1:
            raise ValueError(f"`fusion_hidden_size` must be a positive integer, got {self.fusion_hidden_size!r}.")
        if isinstance(self.classifier_dropout, bool) or not 0.0 <= float(self.classifier_dropout) < 1.0:
            raise ValueError(f"`classifier_dropout` must be in [0, 1), got {self.classifier_dropout!r}.")

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "RveRNetConfig":
        """As in transformers; a dict that is not an RveRNet's (another `model_type`, or no `roi_config` /
        `context_config`) is refused: loading it would build another model, or DeiT-B towers by default."""
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            raise NotAnRveRNetConfig(
                f"config.json has model_type {model_type!r}, not 'rvernet': it is not an RveRNet checkpoint (a tower "
                "is passed as --roi_model_name_or_path / --context_model_name_or_path, or to from_towers_pretrained)."
            )
        missing = [key for key in ("roi_config", "context_config") if not config_dict.get(key)]
        if missing:
            raise NotAnRveRNetConfig(
                f"config.json has no {' and no '.join(missing)}: an RveRNet config names both towers' configs "
                "(each a dict with its model_type), as `save_pretrained` writes them."
            )
        loaded = super().from_dict(config_dict, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        config.check_settings()  # the overrides given as keyword arguments were set after construction
        custom = getattr(config, "custom_pipelines", None)
        if custom:
            # A task this process already has (`import rvernet_hf` registers the prompted pipeline) is served by the
            # registered class: `pipeline(task, model=...)` then needs no `trust_remote_code` for code it has.
            from transformers.pipelines import PIPELINE_REGISTRY

            registered = set(PIPELINE_REGISTRY.get_supported_tasks())
            config.custom_pipelines = {task: spec for task, spec in custom.items() if task not in registered}
        return loaded

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
        """As in transformers; a config.json that is not an RveRNet's is refused, naming the file."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except NotAnRveRNetConfig as error:
            raise NotAnRveRNetConfig(f"{pretrained_model_name_or_path}: {error}") from None

    @classmethod
    def from_tower_configs(
        cls, roi_config: PreTrainedConfig, context_config: PreTrainedConfig, **kwargs: Any
    ) -> "RveRNetConfig":
        r"""Build an [`RveRNetConfig`] from the two towers' configurations (copied, never shared)."""
        return cls(roi_config=roi_config.to_dict(), context_config=context_config.to_dict(), **kwargs)


__all__ = ["RveRNetConfig"]
