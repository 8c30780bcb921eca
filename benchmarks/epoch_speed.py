"""A training epoch of `rvernet-hf train` against a plain PyTorch loop over the same model and pre-made cut-outs
(issue 25), interleaved (trainer, loop, trainer, loop, ...) so that the machine's load hits both alike.

    python benchmarks/epoch_speed.py [--image_size 64] [--num_per_class 400] [--rounds 3] [--json out.json]

The demo's scale by default: 5 classes x 400 images of 64 px (1400 train / 300 validation), two random-init DeiT
towers (96 wide, 4 layers, patch 8; patch 16 at 224 px), batch 32, cached teacher logits (hard distillation from a
Lite0 fine-tuned for two steps), no workers. Printed per round and as medians: the trainer's epoch with and without
its per-epoch evaluation, the plain loop's (its evaluation is a no-grad pass over the validation cut-outs), the
ratios, and the data fetch alone (one pass of the training dataloader's transform, decode to collated batch).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--num_per_class", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from cost import deit_config, plain_loop_epoch
    from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.data import MODEL_INPUTS, RveRNetTransform, load_image_folder_dataset
    from rvernet_hf.synthetic import generate_ambiguous_food
    from rvernet_hf.testing_utils import folder_training_args, machine_facts
    from rvernet_hf.training import main as train

    work = Path(tempfile.mkdtemp(prefix="epoch-speed-"))
    data = work / "data"
    generate_ambiguous_food(
        data,
        num_per_class=args.num_per_class,
        image_size=args.image_size,
        seed=0,
        splits={"train": 0.7, "validation": 0.15, "test": 0.15},
    )
    config = deit_config(96, 4, args.image_size)
    config.patch_size, config.num_attention_heads = (8 if args.image_size <= 96 else 16), 3
    config.save_pretrained(work / "tower")
    folders = folder_training_args(data)
    quiet = ["--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true"]
    train([
        "--model_type", "single", "--model_name_or_path", "efficientnet-lite0-imagenet", "--image_size",
        str(args.image_size), *folders, "--do_train", "--max_steps", "2", "--output_dir", str(work / "teacher"),
        *quiet,
    ])  # fmt: skip
    common = [
        *folders, "--roi_model_name_or_path", str(work / "tower"), "--context_model_name_or_path",
        str(work / "tower"), "--from_scratch", "--fusion_hidden_size", "128", "--do_train", "--num_train_epochs", "1",
        "--per_device_train_batch_size", str(args.batch_size), "--per_device_eval_batch_size", "64",
        "--dataloader_num_workers", "0", "--distillation_type", "hard", "--teacher_model_name_or_path",
        str(work / "teacher"), "--cache_teacher_logits", "--mask_cache_dir", str(work / "mask-cache"), *quiet,
    ]  # fmt: skip

    def trainer_epoch(evaluate: bool, name: str) -> float:
        extra = ["--do_eval", "--eval_strategy", "epoch"] if evaluate else ["--eval_strategy", "no"]
        result = train([*common, *extra, "--output_dir", str(work / name), "--overwrite_output_dir"])
        return float(result["train_runtime"])

    trainer_epoch(
        False, "warm-up"
    )  # fills the mask cache (checks, teacher logits) once; the model folder for the loop
    model_dir = work / "warm-up"
    validation = load_image_folder_dataset(data / "validation", data / "validation_masks")
    processor = RveRNetImageProcessor.from_pretrained(model_dir)

    def loop_epoch(evaluate: bool) -> float:
        seconds = plain_loop_epoch(model_dir, data / "train", data / "train_masks", args.batch_size)
        if evaluate:
            model = RveRNetForImageClassification.from_pretrained(model_dir).eval()
            batch = RveRNetTransform(processor)(validation[:])
            inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
            started = time.perf_counter()
            with torch.no_grad():
                for start in range(0, len(validation), 64):
                    model(**{k: v[start : start + 64] for k, v in inputs.items()})
            seconds += time.perf_counter() - started
        return seconds

    def fetch_epoch() -> float:
        train_split = load_image_folder_dataset(data / "train", data / "train_masks")
        transform = RveRNetTransform(processor, train=True, seed=0)
        from rvernet_hf.data import add_sample_index

        try:  # as the training script hands them over (encoded cells), where the code does so
            from rvernet_hf.training.run import encoded_images
        except ImportError:  # the code before issue 25: decoded by `datasets`
            encoded_images = lambda dataset: dataset  # noqa: E731
        rows = add_sample_index(encoded_images(train_split))
        started = time.perf_counter()
        for start in range(0, len(rows), args.batch_size):
            transform(rows[start : start + args.batch_size])
        return time.perf_counter() - started

    rounds = []
    for number in range(args.rounds):
        figures = {
            "trainer_s": trainer_epoch(False, f"t{number}"),
            "loop_s": loop_epoch(False),
            "trainer_with_eval_s": trainer_epoch(True, f"te{number}"),
            "loop_with_eval_s": loop_epoch(True),
            "fetch_s": fetch_epoch(),
        }
        rounds.append(figures)
        print(f"round {number}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    median["trainer_over_loop"] = median["trainer_s"] / median["loop_s"]
    median["trainer_over_loop_with_eval"] = median["trainer_with_eval_s"] / median["loop_with_eval_s"]
    median["fetch_share_of_trainer_epoch"] = median["fetch_s"] / median["trainer_s"]
    figures = {**machine_facts(), "image_size": args.image_size, "train_images": 0.7 * 5 * args.num_per_class}
    figures.update(median)
    print(f"\nEpoch of `rvernet-hf train` vs a plain loop ({figures['machine']}, {args.image_size} px):")
    for key, value in median.items():
        target = {"trainer_over_loop_with_eval": 1.1}.get(key)
        verdict = "" if target is None else f"  [target <= {target}: {'met' if value <= target else 'MISSED'}]"
        print(f"  {key:<32} {value:.3f}{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
