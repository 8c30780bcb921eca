"""Step 1 of distillation: fine-tune a CNN teacher on the target labels (full images), so that it predicts the
student's label set. Any `AutoModelForImageClassification` checkpoint or timm model works; offline, the built-in
ImageNet EfficientNet-Lite0.

    python examples/train_teacher.py --train_dir data/train --validation_dir data/validation --output_dir teacher
"""

import sys

from rvernet_hf.training import main


DEFAULTS = [
    "--model_type",
    "single",
    "--single_view",
    "full_image",
    "--model_name_or_path",
    "efficientnet-lite0-imagenet",
    "--do_train",
    "--do_eval",
    "--num_train_epochs",
    "5",
    "--learning_rate",
    "2e-3",
    "--eval_strategy",
    "epoch",
    "--save_strategy",
    "epoch",
    "--save_total_limit",
    "1",
    "--report_to",
    "none",
]


if __name__ == "__main__":
    main([*DEFAULTS, *sys.argv[1:]])  # later arguments override the defaults
