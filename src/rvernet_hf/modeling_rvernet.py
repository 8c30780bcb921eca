# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""PyTorch RveRNet: an ROI tower, a context tower and a fusion head.

Read top to bottom: the output dataclass, the fusion head, the pre-trained base class, then the classifier with its
forward pass. This file is uploaded next to the weights and read by the Hub's remote-code loader: it imports only
`torch`, `transformers` and its sibling `configuration_rvernet`.
"""

import copy
from dataclasses import dataclass

import torch
import transformers
from torch import nn
from transformers import AutoModelForImageClassification, PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput, logging

from .configuration_rvernet import RveRNetConfig


logger = logging.get_logger(__name__)


@dataclass
class RveRNetImageClassifierOutput(ModelOutput):
    r"""
    Output of [`RveRNetForImageClassification`].

    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` is given):
            Classification loss (cross-entropy for single-label problems).
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Scores of the fusion head (before softmax).
        roi_logits (`torch.FloatTensor` of shape `(batch_size, roi_output_size)`):
            What the ROI tower passed to the fusion head: its own logits (`fusion="logits"`) or pooled features
            (`fusion="features"`).
        context_logits (`torch.FloatTensor` of shape `(batch_size, context_output_size)`):
            The same for the context tower.
        roi_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The ROI tower's hidden states, as that tower returns them.
        context_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The context tower's hidden states.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    roi_logits: torch.FloatTensor | None = None
    context_logits: torch.FloatTensor | None = None
    roi_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    context_hidden_states: tuple[torch.FloatTensor, ...] | None = None


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


def build_tower(config: PreTrainedConfig) -> PreTrainedModel:
    """A tower with fresh weights, built from its config (weights arrive later through `from_pretrained`)."""
    if config.model_type == "timm_wrapper" and config.num_labels == 0:
        # timm's classifier refuses `num_labels=0`; its base model returns the same pooled features.
        return transformers.TimmWrapperModel._from_config(config)
    return tower_class_for_config(config)._from_config(config)


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


_CONFIG_LOADING_KEYS = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code")


class RveRNetFusionHead(nn.Module):
    """The paper's integration module: concat -> Linear -> ReLU -> Dropout -> Linear."""

    def __init__(self, in_features: int, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(in_features, hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(self.activation(self.dense(fused))))


class RveRNetPreTrainedModel(PreTrainedModel):
    config: RveRNetConfig
    config_class = RveRNetConfig
    base_model_prefix = "rvernet"
    main_input_name = "roi_pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False


class RveRNetForImageClassification(RveRNetPreTrainedModel):
    r"""
    RveRNet: an ROI tower reads the ROI cut-out, a context tower reads the complementary cut-out, and a fusion head
    classifies the ROI from both.

    Example:

    ```python
    >>> import torch
    >>> from transformers import DeiTConfig
    >>> from rvernet_hf import RveRNetConfig, RveRNetForImageClassification

    >>> tiny = DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
    ...                   image_size=32, patch_size=8)
    >>> model = RveRNetForImageClassification(RveRNetConfig(roi_config=tiny, context_config=tiny, num_labels=3))
    >>> roi, context = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    >>> model(roi_pixel_values=roi, context_pixel_values=context).logits.shape
    torch.Size([2, 3])
    ```
    """

    def __init__(
        self,
        config: RveRNetConfig,
        roi_model: PreTrainedModel | None = None,
        context_model: PreTrainedModel | None = None,
    ):
        r"""
        roi_model (`PreTrainedModel`, *optional*):
            An already-built ROI tower (used by `from_towers_pretrained`); built from `config.roi_config` otherwise.
        context_model (`PreTrainedModel`, *optional*):
            An already-built context tower.
        """
        super().__init__(config)
        self.num_labels = config.num_labels

        if roi_model is None:
            roi_model = build_tower(config.roi_config)
        if context_model is None:
            context_model = build_tower(config.context_config)
        # The towers read and write the composite config's sub-configs, so that what is saved is what runs.
        config.roi_config._attn_implementation_internal = roi_model.config._attn_implementation_internal
        config.context_config._attn_implementation_internal = context_model.config._attn_implementation_internal
        roi_model.config = config.roi_config
        context_model.config = config.context_config
        self.roi_model = roi_model
        self.context_model = context_model

        self.roi_output_size = tower_output_size(roi_model)
        self.context_output_size = tower_output_size(context_model)
        self.classifier = RveRNetFusionHead(
            self.roi_output_size + self.context_output_size,
            config.fusion_hidden_size,
            config.num_labels,
            float(config.classifier_dropout),
        )

        self.post_init()

    @classmethod
    def from_towers_pretrained(
        cls,
        roi_model_name_or_path: str,
        context_model_name_or_path: str,
        *model_args,
        id2label: dict[int, str] | None = None,
        fusion: str = "logits",
        **kwargs,
    ) -> "RveRNetForImageClassification":
        r"""
        Build an RveRNet whose towers start from pretrained checkpoints, with a freshly initialised fusion head.

        Keyword arguments are routed by prefix, as in `VisionTextDualEncoderModel.from_vision_text_pretrained`:
        `roi_<name>` goes to the ROI tower's `from_pretrained`, `context_<name>` to the context tower's, and the
        rest (`fusion_hidden_size`, `classifier_dropout`, `label2id`, `num_labels`, ...) to [`RveRNetConfig`].
        Loading options that both towers need (`revision` excepted) can be given once: `dtype`, `cache_dir`,
        `token`, `local_files_only`, `trust_remote_code`, `attn_implementation`.

        Args:
            roi_model_name_or_path (`str`):
                Hub id or local folder of the ROI tower (any image-classification checkpoint).
            context_model_name_or_path (`str`):
                Hub id or local folder of the context tower.
            id2label (`dict[int, str]`, *optional*):
                The labels of the fused classifier. Without it, `num_labels` (or 2) anonymous labels.
            fusion (`str`, *optional*, defaults to `"logits"`):
                `"logits"` keeps each tower's own head (the paper); `"features"` drops it.

        Example:

        ```python
        >>> model = RveRNetForImageClassification.from_towers_pretrained(
        ...     "facebook/deit-base-distilled-patch16-224",
        ...     "facebook/deit-base-distilled-patch16-224",
        ...     id2label={0: "ketchup", 1: "chili paste"},
        ... )  # doctest: +SKIP
        ```
        """
        shared_keys = ("dtype", "cache_dir", "token", "local_files_only", "trust_remote_code", "attn_implementation")
        tower_kwargs = {"roi": {}, "context": {}}
        config_kwargs = {}
        for key, value in kwargs.items():
            if key.startswith("roi_"):
                tower_kwargs["roi"][key[len("roi_") :]] = value
            elif key.startswith("context_"):
                tower_kwargs["context"][key[len("context_") :]] = value
            elif key in shared_keys:
                tower_kwargs["roi"].setdefault(key, value)
                tower_kwargs["context"].setdefault(key, value)
            else:
                config_kwargs[key] = value

        towers = {}
        for name, path in (("roi", roi_model_name_or_path), ("context", context_model_name_or_path)):
            options = dict(tower_kwargs[name])
            num_labels = 0 if fusion == "features" else options.pop("num_labels", None)
            config_options = {k: v for k, v in options.items() if k in _CONFIG_LOADING_KEYS}
            tower_config = transformers.AutoConfig.from_pretrained(path, **config_options)
            if num_labels is not None and num_labels != tower_config.num_labels:
                # A new tower head (or none, for features fusion): the checkpoint's head does not fit it.
                tower_config.num_labels = num_labels
                options.setdefault("ignore_mismatched_sizes", True)
            tower_cls = tower_class_for_config(tower_config)
            towers[name] = tower_cls.from_pretrained(path, *model_args, config=tower_config, **options)

        if id2label is not None:
            config_kwargs["id2label"] = {int(k): v for k, v in id2label.items()}
            config_kwargs.setdefault("label2id", {v: int(k) for k, v in id2label.items()})
        config = RveRNetConfig(
            roi_config=towers["roi"].config, context_config=towers["context"].config, fusion=fusion, **config_kwargs
        )
        config.roi_config.name_or_path = str(roi_model_name_or_path)
        config.context_config.name_or_path = str(context_model_name_or_path)
        model = cls(config, roi_model=towers["roi"], context_model=towers["context"])
        dtype = tower_kwargs["roi"].get("dtype")
        if isinstance(dtype, torch.dtype):
            model.classifier.to(dtype)
        return model

    def _check_inputs(
        self,
        roi_pixel_values: torch.Tensor | None,
        context_pixel_values: torch.Tensor | None,
        labels: torch.Tensor | None,
    ) -> None:
        for name, value, tower_config in (
            ("roi_pixel_values", roi_pixel_values, self.config.roi_config),
            ("context_pixel_values", context_pixel_values, self.config.context_config),
        ):
            if value is None:
                raise ValueError(
                    f"`{name}` is missing: RveRNet needs both `roi_pixel_values` and `context_pixel_values` "
                    "(use `RveRNetImageProcessor` to make both from an image and its ROI)."
                )
            if not isinstance(value, torch.Tensor) or value.dim() != 4:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"`{name}` must be a 4-D tensor (batch, channels, height, width), got {shape}.")
            expected_channels = getattr(tower_config, "num_channels", 3)
            if value.shape[1] != expected_channels:
                raise ValueError(
                    f"`{name}` has {value.shape[1]} channels, but its tower expects {expected_channels} "
                    f"(got shape {tuple(value.shape)}; channels-last input must be permuted to (B, C, H, W))."
                )
        if roi_pixel_values.shape[0] != context_pixel_values.shape[0]:
            raise ValueError(
                f"`roi_pixel_values` and `context_pixel_values` have different batch sizes "
                f"({roi_pixel_values.shape[0]} vs {context_pixel_values.shape[0]}): each ROI cut-out needs its context."
            )
        if labels is not None:
            if labels.shape[0] != roi_pixel_values.shape[0]:
                raise ValueError(
                    f"`labels` has {labels.shape[0]} entries for a batch of {roi_pixel_values.shape[0]} images."
                )
            single_label = self.config.problem_type in (None, "single_label_classification") and not (
                labels.is_floating_point()
            )
            if single_label and self.num_labels > 1 and not torch.compiler.is_compiling():
                valid = (labels == -100) | ((labels >= 0) & (labels < self.num_labels))
                if not bool(valid.all()):
                    bad = labels[~valid].unique().tolist()
                    raise ValueError(
                        f"`labels` must be in [0, {self.num_labels}) (or -100 to ignore), got {bad}. "
                        "Check that the dataset's labels match the model's `label2id`."
                    )

    def forward(
        self,
        roi_pixel_values: torch.Tensor | None = None,
        context_pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> tuple | RveRNetImageClassifierOutput:
        r"""
        Args:
            roi_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                The ROI cut-outs, normalised for the ROI tower.
            context_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                The complementary (context) cut-outs, normalised for the context tower.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Class ids in `[0, num_labels)` (or -100 to ignore a sample). Float multi-hot labels of shape
                `(batch_size, num_labels)` select the multi-label loss, as in transformers' classifiers.
            output_hidden_states (`bool`, *optional*):
                Return each tower's hidden states.
            return_dict (`bool`, *optional*):
                Return a [`RveRNetImageClassifierOutput`] instead of a tuple.
            kwargs:
                Loss keyword arguments, as in transformers' classifiers: `Trainer` passes `num_items_in_batch` so
                that the single-label loss is normalised over the whole accumulated (and distributed) batch.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        self._check_inputs(roi_pixel_values, context_pixel_values, labels)

        roi_outputs = self.roi_model(
            pixel_values=roi_pixel_values, output_hidden_states=output_hidden_states, return_dict=True
        )
        context_outputs = self.context_model(
            pixel_values=context_pixel_values, output_hidden_states=output_hidden_states, return_dict=True
        )
        # Classifiers return `logits` (their own head's, or pooled features when the head is an identity); a timm
        # base model in features mode returns them as `pooler_output`.
        roi_logits = roi_outputs.logits if "logits" in roi_outputs else roi_outputs.pooler_output
        context_logits = context_outputs.logits if "logits" in context_outputs else context_outputs.pooler_output
        logits = self.classifier(torch.cat([roi_logits, context_logits], dim=-1))

        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config, **kwargs)

        output = RveRNetImageClassifierOutput(
            loss=loss,
            logits=logits,
            roi_logits=roi_logits,
            context_logits=context_logits,
            roi_hidden_states=roi_outputs.hidden_states if output_hidden_states else None,
            context_hidden_states=context_outputs.hidden_states if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["RveRNetForImageClassification", "RveRNetImageClassifierOutput", "RveRNetPreTrainedModel"]
