# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""rvernet-hf: RveRNet (ROI tower + context tower + fusion head) for Hugging Face transformers.

Importing the package registers `RveRNetConfig`, `RveRNetForImageClassification` and `RveRNetImageProcessor` with
transformers' Auto classes, and marks them for `auto_map` so that saved folders load with `trust_remote_code=True`
where this package is not installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from .configuration_rvernet import RveRNetConfig
from .image_processing_rvernet import RveRNetImageProcessor
from .modeling_rvernet import RveRNetForImageClassification, RveRNetImageClassifierOutput, RveRNetPreTrainedModel


__version__ = "0.1.0.dev0"

AutoConfig.register(RveRNetConfig.model_type, RveRNetConfig, exist_ok=True)
AutoModelForImageClassification.register(RveRNetConfig, RveRNetForImageClassification, exist_ok=True)
AutoImageProcessor.register(
    RveRNetConfig,
    image_processor_classes={"torchvision": RveRNetImageProcessor, "pil": RveRNetImageProcessor},
    exist_ok=True,
)
RveRNetConfig.register_for_auto_class()
RveRNetImageProcessor.register_for_auto_class("AutoImageProcessor")
RveRNetForImageClassification.register_for_auto_class("AutoModelForImageClassification")

__all__ = [
    "RveRNetConfig",
    "RveRNetForImageClassification",
    "RveRNetImageClassifierOutput",
    "RveRNetImageProcessor",
    "RveRNetPreTrainedModel",
    "__version__",
]
