"""Fine-tune RveRNet on your own image folder with masks, distilled from a teacher trained by train_teacher.py.

    data/train/<class>/<image>.jpg        data/train_masks/<class>/<image stem>.png   (masks optional: SAM fills in)
    data/validation/<class>/<image>.jpg   data/validation_masks/...

    python examples/finetune_image_folder.py --data_dir data --teacher teacher --output_dir rvernet-mine \
        [--roi_model_name_or_path facebook/deit-base-distilled-patch16-224] [--bf16]
"""

import argparse
import os

from rvernet_hf.training import main as train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--teacher", help="a teacher folder (same labels); omit for no distillation")
    parser.add_argument("--output_dir", required=True)
    known, rest = parser.parse_known_args(argv)  # everything else goes to the training script
    data = [
        "--train_dir",
        os.path.join(known.data_dir, "train"),
        "--validation_dir",
        os.path.join(known.data_dir, "validation"),
    ]
    for split in ("train", "validation"):
        if os.path.isdir(os.path.join(known.data_dir, f"{split}_masks")):
            data += [f"--{split}_masks_dir", os.path.join(known.data_dir, f"{split}_masks")]
    teacher = (
        ["--distillation_type", "hard", "--teacher_model_name_or_path", known.teacher, "--cache_teacher_logits"]
        if known.teacher
        else []
    )
    return train(
        [
            *data,
            *teacher,
            "--output_dir",
            known.output_dir,
            "--do_train",
            "--do_eval",
            "--eval_strategy",
            "epoch",
            "--save_strategy",
            "epoch",
            "--save_total_limit",
            "2",
            "--report_to",
            "none",
            *rest,
        ]
    )


if __name__ == "__main__":
    main()
