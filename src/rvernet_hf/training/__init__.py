# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Fine-tune RveRNet (or a single classifier: the CNN teacher, or a baseline) with optional CNN-teacher distillation.

This is `examples/run_rvernet.py` and `rvernet-hf train`: the same code. Arguments come from the command line or one
JSON file (`rvernet-hf train args.json`). It runs as it is under `python`, `torchrun` and `accelerate launch`
(multi-GPU, multi-node, `--bf16`/`--fp16`, `--gradient_accumulation_steps`), with `--gradient_checkpointing` and
`--resume_from_checkpoint` (a folder, or `True` for the latest checkpoint in `--output_dir`).

Fixed ending: train -> save -> log and save metrics -> evaluate -> confusion matrix, curves, model card -> push.

Four modules by concern, every public name importable from `rvernet_hf.training` as well:
- `arguments`: `ModelArguments`, `DataArguments`, `HubArguments`, `parse_args`;
- `splits`: the splits the arguments name, one label map, the checks, every sample read once (`prepare_splits`);
- `build`: the model, its processor, the teacher, the transforms;
- `run`: `main` / `run`: claim the output folder, then the fixed ending.

    # 1. fine-tune the CNN teacher on the target dataset (full images)
    rvernet-hf train --model_type single --model_name_or_path efficientnet-lite0-imagenet \\
        --train_dir data/train --validation_dir data/val --output_dir teacher --num_train_epochs 5
    # 2. RveRNet with distillation from it
    rvernet-hf train --train_dir data/train --train_masks_dir data/train_masks ... \\
        --distillation_type hard --teacher_model_name_or_path teacher --cache_teacher_logits --output_dir rvernet
"""

from .arguments import (
    DATA_LAYOUTS,
    MODEL_TYPES,
    SOURCE_LAYOUTS,
    DataArguments,
    HubArguments,
    ModelArguments,
    parse_args,
)
from .build import build_model, build_teacher, build_transforms, check_cutout_size, with_token_grid
from .run import claim_output_dir, main, run
from .splits import (
    carve_validation,
    check_class_counts,
    check_label_range,
    check_labels,
    load_data,
    needs_masks,
    one_label_map,
    prepare_splits,
    segmentation_id2label,
)


__all__ = [
    "DATA_LAYOUTS",
    "MODEL_TYPES",
    "SOURCE_LAYOUTS",
    "DataArguments",
    "HubArguments",
    "ModelArguments",
    "build_model",
    "build_teacher",
    "build_transforms",
    "carve_validation",
    "check_class_counts",
    "check_cutout_size",
    "check_label_range",
    "check_labels",
    "claim_output_dir",
    "load_data",
    "main",
    "needs_masks",
    "one_label_map",
    "parse_args",
    "prepare_splits",
    "run",
    "segmentation_id2label",
    "with_token_grid",
]
