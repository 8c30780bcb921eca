# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""rvernet-hf: RveRNet (ROI tower + context tower + fusion head) for Hugging Face transformers.

Importing the package registers `RveRNetConfig`, `RveRNetModel`, `RveRNetForImageClassification` and
`RveRNetImageProcessor` with transformers' Auto classes, and marks them for `auto_map` so that saved folders load
with `trust_remote_code=True` where this package is not installed.

The model, processor and pipeline need only the core dependencies. The training, data, evaluation and Hub helpers
are exported here too, lazily (the way transformers exports its API): `import rvernet_hf` works without the `train`
extra, and using one of those names without it raises an `ImportError` that says which extra to install.
"""

import importlib
from typing import Any

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoVideoProcessor,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_rvernet import RveRNetConfig
from .errors import require_extra
from .image_processing_rvernet import RveRNetImageProcessor
from .image_utils_rvernet import load_image, load_mask
from .modeling_rvernet import (
    RveRNetForImageClassification,
    RveRNetImageClassifierOutput,
    RveRNetModel,
    RveRNetModelOutput,
    RveRNetPreTrainedModel,
)
from .pipeline_rvernet import PIPELINE_TASK, RveRNetImageClassificationPipeline


__version__ = "0.1.0.dev0"

AutoConfig.register(RveRNetConfig.model_type, RveRNetConfig, exist_ok=True)
AutoModel.register(RveRNetConfig, RveRNetModel, exist_ok=True)
AutoModelForImageClassification.register(RveRNetConfig, RveRNetForImageClassification, exist_ok=True)
# The processor is a torchvision-backend image processor (it has no PIL twin): registered as that, and only that.
AutoImageProcessor.register(
    RveRNetConfig, image_processor_classes={"torchvision": RveRNetImageProcessor}, exist_ok=True
)


class RveRNetNoVideoProcessor:
    """RveRNet reads photos: it has no video processor, and this class says so. transformers' image pipelines probe
    `AutoVideoProcessor`, which would derive a remote "RveRNetVideoProcessor" from the image processor's `auto_map`
    and, finding no local class, ask whether to run remote code. Registered for RveRNet's config, this refuses to be
    built, and the pipeline goes on without a video processor (its soft failure), as for any image-only model."""

    @classmethod
    def from_dict(cls, *args: Any, **kwargs: Any):
        raise ValueError("RveRNet has no video processor: it classifies photos.")


AutoVideoProcessor.register(
    RveRNetConfig, video_processor_classes={"torchvision": RveRNetNoVideoProcessor}, exist_ok=True
)
RveRNetConfig.register_for_auto_class()
RveRNetImageProcessor.register_for_auto_class("AutoImageProcessor")
RveRNetModel.register_for_auto_class("AutoModel")
RveRNetForImageClassification.register_for_auto_class("AutoModelForImageClassification")
if PIPELINE_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK,
        pipeline_class=RveRNetImageClassificationPipeline,
        pt_model=AutoModelForImageClassification,
        type="image",
    )

# name -> (submodule, the extra its dependencies come from)
_LAZY_EXPORTS: dict[str, tuple[str, str | None]] = {}
for _submodule, _extra, _names in (
    (
        "distillation",
        "train",
        (
            "DistillationTrainingArguments",
            "FrozenTeacher",
            "RveRNetDistillationTrainer",
            "check_teacher_labels",
            "compute_teacher_logits",
            "load_teacher",
        ),
    ),
    ("losses", None, ("DistillationLoss", "distillation_loss")),
    (
        "data",
        "train",
        (
            "FullImagePreprocessor",
            "MaskingReport",
            "PairedTransform",
            "RveRNetTransform",
            "add_sample_index",
            "load_foodseg103_folder",
            "load_image_folder_dataset",
            "load_paired_folder_dataset",
            "precompute_roi_masks",
            "segmentation_to_roi_dataset",
        ),
    ),
    ("trainer", "train", ("RveRNetTrainer",)),
    ("training", "train", ("DataArguments", "HubArguments", "ModelArguments")),
    ("metrics", "train", ("ClassificationMetrics", "load_metric")),
    ("evaluation", "train", ("evaluate_mask_perturbations", "evaluate_model", "predict_dataset")),
    ("hub", "train", ("push_folder", "render_model_card", "verify_reload")),
    ("hub", None, ("export_model", "save_prompted_pipeline")),
    ("visualization", "train", ("save_mask_robustness_plot", "save_roi_visualization")),
    ("synthetic", "train", ("generate_ambiguous_food",)),
    ("teachers", None, ("load_classifier",)),
):
    _LAZY_EXPORTS.update(dict.fromkeys(_names, (_submodule, _extra)))
del _submodule, _extra, _names


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module 'rvernet_hf' has no attribute {name!r}")
    submodule, extra = _LAZY_EXPORTS[name]
    if extra is not None:
        require_extra(extra, f"rvernet_hf.{name}")
    module = importlib.import_module(f".{submodule}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))


__all__ = [
    "RveRNetConfig",
    "RveRNetForImageClassification",
    "RveRNetImageClassificationPipeline",
    "RveRNetImageClassifierOutput",
    "RveRNetImageProcessor",
    "RveRNetModel",
    "RveRNetModelOutput",
    "RveRNetPreTrainedModel",
    "__version__",
    "load_image",
    "load_mask",
    *sorted(_LAZY_EXPORTS),
]
