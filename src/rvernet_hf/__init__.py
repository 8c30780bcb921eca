# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""rvernet-hf: RveRNet (ROI tower + context tower + fusion head) for Hugging Face transformers.

Importing the package registers `RveRNetConfig`, `RveRNetForImageClassification` and `RveRNetImageProcessor` with
transformers' Auto classes, and marks them for `auto_map` so that saved folders load with `trust_remote_code=True`
where this package is not installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification, AutoVideoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_rvernet import RveRNetConfig
from .image_processing_rvernet import RveRNetImageProcessor
from .modeling_rvernet import RveRNetForImageClassification, RveRNetImageClassifierOutput, RveRNetPreTrainedModel
from .pipeline_rvernet import PIPELINE_TASK, RveRNetImageClassificationPipeline


__version__ = "0.1.0.dev0"

AutoConfig.register(RveRNetConfig.model_type, RveRNetConfig, exist_ok=True)
AutoModelForImageClassification.register(RveRNetConfig, RveRNetForImageClassification, exist_ok=True)
AutoImageProcessor.register(
    RveRNetConfig,
    image_processor_classes={"torchvision": RveRNetImageProcessor, "pil": RveRNetImageProcessor},
    exist_ok=True,
)
# Image pipelines also probe `AutoVideoProcessor`, which derives a remote "RveRNetVideoProcessor" from the image
# processor's auto_map and, finding no local class, asks interactively whether to run remote code (transformers 5).
# Declaring the local processor stops that prompt; pipelines never use it for video.
AutoVideoProcessor.register(
    RveRNetConfig, video_processor_classes={"torchvision": RveRNetImageProcessor}, exist_ok=True
)
RveRNetConfig.register_for_auto_class()
RveRNetImageProcessor.register_for_auto_class("AutoImageProcessor")
RveRNetForImageClassification.register_for_auto_class("AutoModelForImageClassification")
if PIPELINE_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK, pipeline_class=RveRNetImageClassificationPipeline, pt_model=AutoModelForImageClassification,
        type="image",
    )  # fmt: skip

__all__ = [
    "RveRNetConfig",
    "RveRNetForImageClassification",
    "RveRNetImageClassificationPipeline",
    "RveRNetImageClassifierOutput",
    "RveRNetImageProcessor",
    "RveRNetPreTrainedModel",
    "__version__",
]
