# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""PyTorch RveRNet: an ROI tower, a context tower and a fusion head.

Read top to bottom: the output dataclass, the fusion head, the pre-trained base class, then the classifier with its
forward pass. Which patches a token-sparse tower reads (the patch-grid contract shared with the image processor) is in
`token_grid_rvernet`. This file is uploaded next to the weights and read by the Hub's remote-code loader: it imports
only `torch`, `transformers` and its siblings `configuration_rvernet`, `towers_rvernet` (building towers, what they
support) and `token_grid_rvernet`.
"""

import contextlib
from dataclasses import dataclass

import torch
import transformers
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, add_start_docstrings_to_model_forward, logging

from .configuration_rvernet import RveRNetConfig
from .token_grid_rvernet import (
    SPARSE_TOWER_SPECIAL_TOKENS,
    keep_tokens,
    kept_token_index,
    length_groups,
    run_in_groups,
    tower_num_patches,
    tower_token_patch_size,
)
from .towers_rvernet import (
    FULLGRAPH_TESTED_TOWERS,
    TOWERS,
    build_tower,
    check_tower_attn_implementation,
    tower_build_class,
    tower_class_for_config,
    tower_output_size,
    tower_records_attentions,
)
from .weights_rvernet import check_finite_weights, verify_checksums, write_checksums


logger = logging.get_logger(__name__)

# The inputs both models' `forward` take (the classifier adds `labels`), written once.
RVERNET_INPUTS_DOCSTRING = r"""
    Args:
        roi_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            The ROI cut-outs, normalised for the ROI tower.
        context_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            The complementary (context) cut-outs, normalised for the context tower.
        output_attentions (`bool`, *optional*):
            Return each tower's attention maps (a tower needs eager attention for them: under SDPA it warns and
            returns none; towers without attention maps return `None`). Defaults to `config.output_attentions`.
        output_hidden_states (`bool`, *optional*):
            Return each tower's hidden states. Defaults to `config.output_hidden_states`.
        return_dict (`bool`, *optional*):
            Return a `ModelOutput` instead of a tuple.
        roi_image_index (`torch.LongTensor`, *optional*):
            Which input image each sample comes from, as `RveRNetImageProcessor` returns it: bookkeeping for the
            caller, accepted so that `model(**processor(...))` works; not used by the model.
        roi_token_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*):
            Which patches of its grid (raster order) the ROI tower reads, with `config.token_selection="mask"` and a
            ViT-family tower: those that overlap the ROI, as `RveRNetImageProcessor` makes them when its `patch_size`
            is set. Integer masks count nonzero as kept. Not used by dense towers.
        context_token_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*):
            The same for the context tower: the patches that overlap the rest of the image.
"""


@dataclass
class RveRNetModelOutput(ModelOutput):
    r"""
    Output of [`RveRNetModel`]: what each tower hands to the fusion head, and (on request) what happened inside them.

    Args:
        pooler_output (`torch.FloatTensor` of shape `(batch_size, roi_output_size + context_output_size)`):
            The concatenation `[roi_pooler_output, context_pooler_output]`: exactly what the fusion head of
            [`RveRNetForImageClassification`] reads, one feature vector per sample.
        roi_pooler_output (`torch.FloatTensor` of shape `(batch_size, roi_output_size)`):
            What the ROI tower hands to the fusion head: its own logits (`fusion="logits"`, the paper) or its pooled
            features (`fusion="features"`, the tower's head removed).
        context_pooler_output (`torch.FloatTensor` of shape `(batch_size, context_output_size)`):
            The same for the context tower.
        roi_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The ROI tower's hidden states, as that tower returns them: for ViT-family towers one tensor of shape
            `(batch_size, num_tokens, hidden_size)` per layer plus the embeddings; for CNNs one feature map
            `(batch_size, channels, height, width)` per stage. With `token_selection="mask"` a sparse tower's
            tokens are its special tokens, then its kept patches in raster order (the `True` entries of
            `roi_token_mask`, in order), padded to the batch's longest with inert tokens (`num_tokens` = special
            tokens + the largest kept count of the batch); its attention maps are over the same tokens.
        context_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The same for the context tower.
        roi_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            The ROI tower's attention maps after the softmax, one tensor of shape
            `(batch_size, num_heads, num_tokens, num_tokens)` per layer (Swin: per window,
            `(batch_size * num_windows, num_heads, window_tokens, window_tokens)`). `None` for a tower without
            attention maps (CNNs, timm models).
        context_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            The same for the context tower.
    """

    pooler_output: torch.FloatTensor | None = None
    roi_pooler_output: torch.FloatTensor | None = None
    context_pooler_output: torch.FloatTensor | None = None
    roi_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    context_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    roi_attentions: tuple[torch.FloatTensor, ...] | None = None
    context_attentions: tuple[torch.FloatTensor, ...] | None = None


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
            (`fusion="features"`). The base model's `roi_pooler_output`.
        context_logits (`torch.FloatTensor` of shape `(batch_size, context_output_size)`):
            The same for the context tower.
        roi_hidden_states, context_hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Returned when `output_hidden_states=True`; see [`RveRNetModelOutput`].
        roi_attentions, context_attentions (`tuple(torch.FloatTensor)`, *optional*):
            Returned when `output_attentions=True`: a tower running eager attention returns its maps; one running
            SDPA or flash attention warns and returns none (an empty tuple), as transformers' models do; `None` for
            towers without attention maps (CNNs, timm). See [`RveRNetModelOutput`] for the shapes.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    roi_logits: torch.FloatTensor | None = None
    context_logits: torch.FloatTensor | None = None
    roi_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    context_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    roi_attentions: tuple[torch.FloatTensor, ...] | None = None
    context_attentions: tuple[torch.FloatTensor, ...] | None = None


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
    """Common base of [`RveRNetModel`] and [`RveRNetForImageClassification`].

    What RveRNet supports is what BOTH its towers support, read from the towers' classes (so it is known before any
    weight is built): `_supports_sdpa`, `_supports_flash_attn`, `_supports_flex_attn`, `_supports_attention_backend`
    and `_can_compile_fullgraph` are properties of the instance. An explicit `attn_implementation` that one tower
    cannot run is refused with a `ValueError` naming that tower; a per-tower dict
    (`{"roi_config": "sdpa", "context_config": "eager"}`) sets each tower on its own.
    """

    config: RveRNetConfig
    config_class = RveRNetConfig
    base_model_prefix = "rvernet"
    main_input_name = "roi_pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True

    # Private transformers API, kept because no public hook serves: transformers reads what a model supports from these
    # class flags (`_supports_sdpa`, ...) when it picks an attention implementation, and a composite of two
    # arbitrary towers supports what both do; properties are the only way to answer per instance. Checked against
    # each transformers release by tests/test_modeling_common_rvernet.py (the attention and compile tests).
    def _towers_support(self, flag: str) -> bool:
        return all(getattr(tower_build_class(getattr(self.config, key)), flag) for _, key, _ in TOWERS)

    @property
    def _supports_sdpa(self) -> bool:
        return self._towers_support("_supports_sdpa")

    @property
    def _supports_flash_attn(self) -> bool:
        return self._towers_support("_supports_flash_attn")

    @property
    def _supports_flex_attn(self) -> bool:
        return self._towers_support("_supports_flex_attn")

    @property
    def _supports_attention_backend(self) -> bool:
        return self._towers_support("_supports_attention_backend")

    @property
    def _can_compile_fullgraph(self) -> bool:
        return all(
            tower_class._can_compile_fullgraph or tower_class.__name__ in FULLGRAPH_TESTED_TOWERS
            for tower_class in (tower_build_class(getattr(self.config, key)) for _, key, _ in TOWERS)
        )

    @property
    def token_patch_sizes(self) -> dict[str, int | None]:
        """Per tower (`"roi"`, `"context"`), the patch size of its token grid if it can read selected tokens
        (a ViT-family tower), else None: what `RveRNetImageProcessor(patch_size=...)` takes to make the
        `roi_token_mask` / `context_token_mask` inputs that `token_selection="mask"` reads."""
        return {name: tower_token_patch_size(getattr(self.config, f"{name}_config")) for name in ("roi", "context")}

    # Private transformers API: the one place where `from_pretrained(attn_implementation=...)` and `__init__` settle
    # the implementation; overridden (no public hook) so that a request one tower cannot run is refused, naming it,
    # instead of failing inside that tower or silently running something else.
    def _check_and_adjust_attn_implementation(
        self, attn_implementation: str | None, is_init_check: bool = False, allow_all_kernels: bool = False
    ) -> str:
        if is_init_check:
            # The sub-configs hold what was asked for each tower (transformers spreads a single name over them).
            check_tower_attn_implementation(
                self.config, {key: getattr(self.config, key)._attn_implementation for _, key, _ in TOWERS}
            )
        # RveRNet's own layers have no attention: keep a name both towers run, else let transformers pick the default.
        if isinstance(attn_implementation, str) and attn_implementation != "eager":
            try:
                check_tower_attn_implementation(self.config, attn_implementation)
            except ValueError:
                if is_init_check:
                    attn_implementation = None  # the towers were set one by one
                elif attn_implementation in ALL_ATTENTION_FUNCTIONS.valid_keys():
                    # `set_attn_implementation({"": name})` labels the top level only, which runs no attention.
                    return attn_implementation
        return super()._check_and_adjust_attn_implementation(
            attn_implementation, is_init_check=is_init_check, allow_all_kernels=allow_all_kernels
        )

    def set_attn_implementation(self, attn_implementation: str | dict, allow_all_kernels: bool = False):
        """As in transformers; a request one tower cannot honour is refused (naming it) before anything changes."""
        check_tower_attn_implementation(self.config, attn_implementation)
        return super().set_attn_implementation(attn_implementation, allow_all_kernels=allow_all_kernels)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """As in transformers; weights that changed since this package saved them (their checksum), or that hold NaN,
        infinite or absurdly large values (a damaged file, a diverged run's save) are refused, naming the file and
        the tensor, where they would otherwise give wrong scores later."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading info) on request
        if pretrained_model_name_or_path is not None:
            verify_checksums(pretrained_model_name_or_path, kwargs.get("revision"))
        check_finite_weights(model, pretrained_model_name_or_path)
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also declare both RveRNet classes in `auto_map`, so that `AutoModel` and `AutoModelForImageClassification`
        load any saved RveRNet folder with `trust_remote_code=True`."""
        if self._auto_class is not None:
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.setdefault("AutoModel", "modeling_rvernet.RveRNetModel")
            auto_map.setdefault("AutoModelForImageClassification", "modeling_rvernet.RveRNetForImageClassification")
            self.config.auto_map = auto_map
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):  # the weights' checksum, checked when they are loaded
            write_checksums(save_directory)
        return saved

    @classmethod
    def from_towers_pretrained(
        cls,
        roi_model_name_or_path: str,
        context_model_name_or_path: str,
        *model_args,
        id2label: dict[int, str] | None = None,
        fusion: str = "logits",
        **kwargs,
    ):
        r"""
        Build an RveRNet whose towers start from pretrained checkpoints (for the classifier, with a freshly
        initialised fusion head).

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
            try:
                tower_config = transformers.AutoConfig.from_pretrained(path, **config_options)
            except OSError as error:  # offline, or no such repository: name the checkpoint it tried
                raise OSError(f"the {name} tower {path!r} could not be loaded: {error}") from error
            if num_labels is not None and num_labels != tower_config.num_labels:
                # A new tower head (or none, for features fusion): the checkpoint's head does not fit it.
                tower_config.num_labels = num_labels
                options.setdefault("ignore_mismatched_sizes", True)
            tower_cls = tower_class_for_config(tower_config)
            towers[name] = tower_cls.from_pretrained(path, *model_args, config=tower_config, **options)

        if id2label is not None:
            config_kwargs["id2label"] = {int(k): v for k, v in id2label.items()}
            config_kwargs.setdefault("label2id", {v: int(k) for k, v in id2label.items()})
        # Copies of the towers' configs: the towers keep theirs (with their resolved attention implementation,
        # which the model then copies into its sub-configs) until the model takes them over.
        config = RveRNetConfig.from_tower_configs(
            towers["roi"].config, towers["context"].config, fusion=fusion, **config_kwargs
        )
        config.roi_config.name_or_path = str(roi_model_name_or_path)
        config.context_config.name_or_path = str(context_model_name_or_path)
        model = cls(config, roi_model=towers["roi"], context_model=towers["context"])
        dtype = tower_kwargs["roi"].get("dtype")
        if isinstance(dtype, torch.dtype) and hasattr(model, "classifier"):
            model.classifier.to(dtype)
        return model


_CONFIG_LOADING_KEYS = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code")


class RveRNetModel(RveRNetPreTrainedModel):
    r"""
    The two RveRNet towers without the fusion head: the ROI tower reads the ROI cut-out, the context tower the
    complementary cut-out, and the output is what the fusion head of [`RveRNetForImageClassification`] reads
    (`pooler_output`, one vector per sample), with each tower's part, hidden states and attention maps on request.

    `AutoModel.from_pretrained(folder)` builds it from any saved RveRNet (the fusion head's weights are left out),
    and `pipeline("image-feature-extraction", model=folder)` returns `pooler_output` per sample.

    Example:

    ```python
    >>> import torch
    >>> from transformers import DeiTConfig
    >>> from rvernet_hf import RveRNetConfig, RveRNetModel

    >>> tiny = DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
    ...                   image_size=32, patch_size=8, num_labels=5)
    >>> model = RveRNetModel(RveRNetConfig(roi_config=tiny, context_config=tiny))
    >>> roi, context = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    >>> model(roi_pixel_values=roi, context_pixel_values=context).pooler_output.shape
    torch.Size([2, 10])
    ```
    """

    # A classifier checkpoint loaded as the base model: its fusion head is not part of it.
    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

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
        if roi_model is None:
            roi_model = build_tower(config.roi_config)
        if context_model is None:
            context_model = build_tower(config.context_config)
        # The towers read and write the composite config's sub-configs, so that what is saved is what runs. (A tower
        # given already built keeps its implementation: `_attn_implementation_internal` is what transformers itself
        # copies between configs; the public `_attn_implementation` getter resolves a default instead of copying.)
        config.roi_config._attn_implementation_internal = roi_model.config._attn_implementation_internal
        config.context_config._attn_implementation_internal = context_model.config._attn_implementation_internal
        roi_model.config = config.roi_config
        context_model.config = config.context_config
        self.roi_model = roi_model
        self.context_model = context_model
        self.roi_output_size = tower_output_size(roi_model)
        self.context_output_size = tower_output_size(context_model)
        if config.token_selection == "mask":
            for name, key, attribute in TOWERS:
                if tower_token_patch_size(getattr(config, key)) is None:
                    logger.warning(
                        f"token_selection='mask': the {name} tower ({type(getattr(self, attribute)).__name__}) "
                        f"stays dense; token selection applies to {sorted(SPARSE_TOWER_SPECIAL_TOKENS)} towers."
                    )
        self.post_init()

    def freeze_towers(self, frozen: bool = True) -> None:
        """Freeze both towers, as the official model's `freeze()` does: no gradients, and evaluation mode kept while
        the model trains, so that their weights and batch-norm statistics stay as loaded, bit for bit; only what
        reads them (the fusion head) learns. `frozen=False` undoes it."""
        self.towers_frozen = frozen
        for tower in (self.roi_model, self.context_model):
            tower.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "towers_frozen", False):  # frozen towers never leave evaluation mode
            self.roi_model.eval()
            self.context_model.eval()
        return self

    def _check_pixel_values(self, roi_pixel_values: torch.Tensor | None, context_pixel_values: torch.Tensor | None):
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

    def _token_mask(self, key: str, pixel_values: torch.Tensor, token_mask: torch.Tensor | None):
        """The keep mask a tower reads, checked, or None when the tower runs dense."""
        tower_config = getattr(self.config, f"{key}_config")
        if self.config.token_selection != "mask" or tower_token_patch_size(tower_config) is None:
            return None  # a dense tower: a token mask, if given, is not used
        num_patches = tower_num_patches(tower_config, pixel_values)
        expected = f"a bool tensor of shape ({pixel_values.shape[0]}, {num_patches})"
        if token_mask is None:
            raise ValueError(
                f"token_selection='mask' needs `{key}_token_mask` ({expected}: which patches the {key} tower reads). "
                f"RveRNetImageProcessor makes it when its `patch_size` is set: pass "
                f"patch_size={tower_config.patch_size} to the processor (constructor or call), or load the model "
                "with token_selection='dense'."
            )
        if not isinstance(token_mask, torch.Tensor) or tuple(token_mask.shape) != (pixel_values.shape[0], num_patches):
            got = tuple(token_mask.shape) if isinstance(token_mask, torch.Tensor) else type(token_mask).__name__
            raise ValueError(f"`{key}_token_mask` must be {expected} (the tower's patch grid), got {got}.")
        if token_mask.is_floating_point() or token_mask.is_complex():
            raise ValueError(f"`{key}_token_mask` must be bool (or integer, nonzero = kept), got {token_mask.dtype}.")
        return token_mask

    def _run_tower(
        self,
        tower: PreTrainedModel,
        pixel_values: torch.Tensor,
        output_hidden_states: bool,
        output_attentions: bool,
        token_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        """(what the tower hands the fusion head, its hidden states or None, its attention maps or None).

        With a `token_mask`, the tower encodes its special tokens and the kept patches only."""
        options = {"output_hidden_states": output_hidden_states, "return_dict": True}
        # As transformers' own models do: a tower whose attention kernel cannot return maps (SDPA, flash) warns
        # once and returns none; callers that ask every model for attentions keep working.
        with_attentions = output_attentions and tower_records_attentions(tower)
        if with_attentions:
            options["output_attentions"] = True
        if token_mask is not None:
            counts = token_mask.bool().sum(dim=1).tolist()  # the one host sync per tower and step
            if self.config.group_by_length and not output_hidden_states and not with_attentions:
                groups = length_groups(counts)
                if len(groups) > 1:  # samples of very different lengths: each group padded to its own longest
                    return run_in_groups(tower, pixel_values, token_mask, groups, counts, options), None, None
        with contextlib.ExitStack() as stack:
            if token_mask is not None:
                index = kept_token_index(token_mask, max(counts, default=0))
                options["attention_mask"] = stack.enter_context(keep_tokens(tower, *index))
            outputs = tower(pixel_values=pixel_values, **options)
        # Classifiers return `logits` (their own head's, or pooled features when the head is an identity); a timm
        # base model in features mode returns them as `pooler_output`.
        pooled = outputs.logits if "logits" in outputs else outputs.pooler_output
        hidden_states = outputs.hidden_states if output_hidden_states else None
        attentions = outputs.attentions if with_attentions else None
        return pooled, hidden_states, attentions

    @add_start_docstrings_to_model_forward(RVERNET_INPUTS_DOCSTRING)
    def forward(
        self,
        roi_pixel_values: torch.Tensor | None = None,
        context_pixel_values: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        roi_image_index: torch.Tensor | None = None,
        roi_token_mask: torch.Tensor | None = None,
        context_token_mask: torch.Tensor | None = None,
    ) -> tuple | RveRNetModelOutput:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        self._check_pixel_values(roi_pixel_values, context_pixel_values)
        roi_token_mask = self._token_mask("roi", roi_pixel_values, roi_token_mask)
        context_token_mask = self._token_mask("context", context_pixel_values, context_token_mask)
        roi, roi_hidden, roi_attentions = self._run_tower(
            self.roi_model, roi_pixel_values, output_hidden_states, output_attentions, roi_token_mask
        )
        context, context_hidden, context_attentions = self._run_tower(
            self.context_model, context_pixel_values, output_hidden_states, output_attentions, context_token_mask
        )
        output = RveRNetModelOutput(
            pooler_output=torch.cat([roi, context], dim=-1),
            roi_pooler_output=roi,
            context_pooler_output=context,
            roi_hidden_states=roi_hidden,
            context_hidden_states=context_hidden,
            roi_attentions=roi_attentions,
            context_attentions=context_attentions,
        )
        return output if return_dict else output.to_tuple()


class RveRNetForImageClassification(RveRNetPreTrainedModel):
    r"""
    RveRNet: an ROI tower reads the ROI cut-out, a context tower reads the complementary cut-out, and a fusion head
    classifies the ROI from both. It is [`RveRNetModel`] (as `self.rvernet`) plus the fusion head (`self.classifier`);
    `model.roi_model` and `model.context_model` reach the towers.

    Checkpoints saved before the base model existed (tower keys `roi_model.*` / `context_model.*` at the top level)
    load unchanged: transformers adds the `rvernet.` prefix to each key the model has under it.

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
        roi_model, context_model (`PreTrainedModel`, *optional*): already-built towers, as in [`RveRNetModel`].
        """
        super().__init__(config)
        self.num_labels = config.num_labels
        self.rvernet = RveRNetModel(config, roi_model=roi_model, context_model=context_model)
        self.classifier = RveRNetFusionHead(
            self.rvernet.roi_output_size + self.rvernet.context_output_size,
            config.fusion_hidden_size,
            config.num_labels,
            float(config.classifier_dropout),
        )
        self.post_init()

    # The towers and their widths, reached through the base model.
    @property
    def roi_model(self) -> PreTrainedModel:
        return self.rvernet.roi_model

    @property
    def context_model(self) -> PreTrainedModel:
        return self.rvernet.context_model

    @property
    def roi_output_size(self) -> int:
        return self.rvernet.roi_output_size

    @property
    def context_output_size(self) -> int:
        return self.rvernet.context_output_size

    def freeze_towers(self, frozen: bool = True) -> None:
        """Train the fusion head only: see [`RveRNetModel.freeze_towers`]."""
        self.rvernet.freeze_towers(frozen)

    def _check_labels(self, labels: torch.Tensor, batch_size: int) -> None:
        if labels.shape[0] != batch_size:
            raise ValueError(f"`labels` has {labels.shape[0]} entries for a batch of {batch_size} images.")
        # The range check reads the labels' values: free on the host, a device-to-host sync on an accelerator. It
        # runs only for labels on the CPU; the training data is checked once when it is loaded (rvernet_hf.training.splits).
        single_label = self.config.problem_type in (None, "single_label_classification") and not (
            labels.is_floating_point()
        )
        if single_label and self.num_labels > 1 and labels.device.type == "cpu" and not torch.compiler.is_compiling():
            valid = (labels == -100) | ((labels >= 0) & (labels < self.num_labels))
            if not bool(valid.all()):
                bad = labels[~valid].unique().tolist()
                raise ValueError(
                    f"`labels` must be in [0, {self.num_labels}) (or -100 to ignore), got {bad}. "
                    "Check that the dataset's labels match the model's `label2id`."
                )

    @add_start_docstrings_to_model_forward(RVERNET_INPUTS_DOCSTRING)
    def forward(
        self,
        roi_pixel_values: torch.Tensor | None = None,
        context_pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        roi_image_index: torch.Tensor | None = None,
        roi_token_mask: torch.Tensor | None = None,
        context_token_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | RveRNetImageClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class ids in `[0, num_labels)` (or -100 to ignore a sample). Float multi-hot labels of shape
            `(batch_size, num_labels)` select the multi-label loss, as in transformers' classifiers. Labels on
            the CPU are range-checked here; on an accelerator that check would cost a host sync every step, so
            it is left to the data side.
        kwargs:
            Loss keyword arguments, as in transformers' classifiers: `Trainer` passes `num_items_in_batch` so
            that the single-label loss is normalised over the whole accumulated (and distributed) batch.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.rvernet(
            roi_pixel_values=roi_pixel_values,
            context_pixel_values=context_pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            roi_token_mask=roi_token_mask,
            context_token_mask=context_token_mask,
        )
        logits = self.classifier(outputs.pooler_output)

        loss = None
        if labels is not None:
            self._check_labels(labels, roi_pixel_values.shape[0])
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config, **kwargs)

        output = RveRNetImageClassifierOutput(
            loss=loss,
            logits=logits,
            roi_logits=outputs.roi_pooler_output,
            context_logits=outputs.context_pooler_output,
            roi_hidden_states=outputs.roi_hidden_states,
            context_hidden_states=outputs.context_hidden_states,
            roi_attentions=outputs.roi_attentions,
            context_attentions=outputs.context_attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "RveRNetForImageClassification",
    "RveRNetImageClassifierOutput",
    "RveRNetModel",
    "RveRNetModelOutput",
    "RveRNetPreTrainedModel",
]
