# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf demo`: the whole method end to end, offline, on CPU, in minutes.

1. generate the built-in ambiguous-food benchmark (seeded);
2. fine-tune the real ImageNet EfficientNet-Lite0 teacher on it (full images);
3. train RveRNet (two small DeiT towers, random init) with hard distillation from that teacher (cached logits);
4. evaluate both on the held-out test split (accuracy, macro-F1, ambiguous-group F1);
5. the model folder is Hub-ready (weights, processor, code, prompted pipeline, model card); a dry-run upload shows
   exactly what `--push_to_hub` would send;
6. reload it through `pipeline()` and classify a few test images with their masks;
7. write pictures: confusion matrices, training curves, ROI visualisations with the predictions.

Scale it up on a GPU: `--num_per_class 2000 --image_size 224 --tower_hidden 384 --tower_layers 12 --epochs 30 --bf16`.
"""

import argparse
import json
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rvernet-hf demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="rvernet-demo", help="everything goes here")
    parser.add_argument("--num_per_class", type=int, default=400, help="images per class (5 classes)")
    parser.add_argument("--image_size", type=int, default=64, help="generated image side, and the towers' input")
    parser.add_argument("--tower_hidden", type=int, default=96, help="DeiT tower width")
    parser.add_argument("--tower_layers", type=int, default=4, help="DeiT tower depth")
    parser.add_argument("--patch_size", type=int, default=8, help="DeiT patch size")
    parser.add_argument("--epochs", type=float, default=30, help="RveRNet epochs")
    parser.add_argument("--teacher_epochs", type=float, default=4, help="teacher fine-tuning epochs")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="RveRNet learning rate")
    parser.add_argument("--distillation_type", choices=["none", "soft", "hard"], default="hard")
    parser.add_argument("--seed", type=int, default=42, help="training seed (weights, data order, augmentations)")
    parser.add_argument("--data_seed", type=int, default=0, help="seed of the generated benchmark data")
    parser.add_argument(
        "--distractor_prob",
        type=float,
        default=0.0,
        help="chance that a scene also holds another target food (harder for full-image models)",
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU, or CPU autocast)")
    parser.add_argument("--skip_teacher", action="store_true", help="reuse <output_dir>/teacher if it exists")
    parser.add_argument(
        "--mask_augmentation", type=float, default=0.0, help="RveRNet: probability of a perturbed training mask"
    )
    parser.add_argument("--cutout_style", choices=["fill", "blur", "dim"], default="fill", help="RveRNet's cut-outs")
    return parser


def _args(**values) -> list[str]:
    out = []
    for key, value in values.items():
        if value is True:
            out.append(f"--{key}")
        elif value is not None and value is not False:  # 0 is a value (`0 in (None, False)` is True in Python)
            out.extend([f"--{key}", str(value)])
    return out


def run_demo(argv: list[str] | None = None) -> dict:
    from transformers import DeiTConfig, ViTImageProcessor, pipeline
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    from .evaluation import evaluate_model, load_for_evaluation, load_split
    from .metrics import save_confusion_matrix
    from .synthetic import generate_ambiguous_food
    from .training import main as train
    from .visualization import save_roi_visualization

    args = build_parser().parse_args(argv)
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings = {}

    def step(name):
        timings[name] = round(time.perf_counter() - started - sum(timings.values()), 1)
        print(f"[demo] {name} done ({timings[name]} s)", flush=True)

    # 1. data
    data_dir = root / "data"
    if not (data_dir / "dataset_info.json").exists():
        generate_ambiguous_food(
            data_dir,
            num_per_class=args.num_per_class,
            image_size=args.image_size,
            seed=args.data_seed,
            distractor_prob=args.distractor_prob,
        )
    info = json.loads((data_dir / "dataset_info.json").read_text())
    ambiguous = ",".join(info["ambiguous_labels"])
    step("generate data")

    for previous in (root / "rvernet",) if args.skip_teacher else (root / "teacher", root / "rvernet"):
        if any(previous.glob("*.safetensors")):
            print(f"[demo] replacing the previous demo run in {previous} (--overwrite_output_dir)", flush=True)
    common = _args(
        report_to="none",
        seed=args.seed,
        per_device_train_batch_size=args.batch_size,
        overwrite_output_dir=True,
        per_device_eval_batch_size=64,
        logging_steps=10,
        save_strategy="no",
        eval_strategy="epoch",
        do_train=True,
        do_eval=True,
        dataloader_num_workers=0,
        ambiguous_labels=ambiguous,
        bf16=args.bf16,
        disable_tqdm="true",
    )
    folders = _args(
        train_dir=data_dir / "train",
        train_masks_dir=data_dir / "train_masks",
        validation_dir=data_dir / "validation",
        validation_masks_dir=data_dir / "validation_masks",
    )

    # 2. the CNN teacher, fine-tuned on full images so that it predicts our labels
    teacher_dir = root / "teacher"
    if not (args.skip_teacher and (teacher_dir / "model.safetensors").exists()):
        train(
            [
                *folders,
                *common,
                *_args(
                    model_type="single",
                    model_name_or_path="efficientnet-lite0-imagenet",
                    image_size=args.image_size,
                    output_dir=teacher_dir,
                    learning_rate=2e-3,
                    num_train_epochs=args.teacher_epochs,
                ),
            ]
        )
    step("fine-tune teacher")

    # 3. RveRNet, random-init DeiT towers, distilled from the teacher
    tower_dir = root / "tower-config"
    heads = max(1, args.tower_hidden // 32)
    DeiTConfig(
        hidden_size=args.tower_hidden,
        num_hidden_layers=args.tower_layers,
        num_attention_heads=heads,
        intermediate_size=args.tower_hidden * 4,
        image_size=args.image_size,
        patch_size=args.patch_size,
    ).save_pretrained(tower_dir)
    # The towers' input facts travel with them, as a checkpoint's do (ImageNet statistics, the demo's size).
    ViTImageProcessor(
        size={"height": args.image_size, "width": args.image_size},
        image_mean=IMAGENET_DEFAULT_MEAN,
        image_std=IMAGENET_DEFAULT_STD,
    ).save_pretrained(tower_dir)
    model_dir = root / "rvernet"
    if (root / "hub-upload").exists():
        import shutil

        shutil.rmtree(root / "hub-upload")  # the dry run refuses to write into a non-empty folder
    distillation = (
        {}
        if args.distillation_type == "none"
        else {
            "distillation_type": args.distillation_type,
            "teacher_model_name_or_path": teacher_dir,
            "cache_teacher_logits": True,
        }
    )
    train(
        [
            *folders,
            *common,
            *_args(
                roi_model_name_or_path=tower_dir,
                context_model_name_or_path=tower_dir,
                from_scratch=True,
                fusion_hidden_size=128,
                output_dir=model_dir,
                learning_rate=args.learning_rate,
                num_train_epochs=args.epochs,
                warmup_steps=20,
                weight_decay=0.05,
                push_to_hub=True,
                hub_model_id="your-name/rvernet-demo",
                push_dry_run_dir=root / "hub-upload",
                model_card_dataset="rvernet-ambiguous-food (built in, synthetic)",
                mask_augmentation=args.mask_augmentation,
                cutout_style=args.cutout_style,
                **distillation,
            ),
        ]
    )
    step("train RveRNet")

    # 4. held-out test split
    test = load_split(data_dir, "test")
    results = {}
    for name, folder in (
        ("teacher (EfficientNet-Lite0, full image)", teacher_dir),
        ("RveRNet (DeiT+DeiT)", model_dir),
    ):
        model, transform = load_for_evaluation(folder)
        results[name] = evaluate_model(model, transform, test, info["ambiguous_labels"])
        save_confusion_matrix(
            results[name]["confusion_matrix"],
            list(results[name]["per_class"]),
            root / f"confusion_test_{Path(folder).name}.png",
            title=f"{name}, test",
        )
    step("evaluate on test")

    # 6. reload through pipeline() (remote code, as from the Hub) and classify a few test images with their masks
    classifier = pipeline("rvernet-image-classification", model=str(model_dir), trust_remote_code=True)
    samples = [test[i] for i in range(0, len(test), max(1, len(test) // 4))][:4]
    names = test.features["label"].names
    pictures = []
    print("\n[demo] pipeline('rvernet-image-classification') on test images (mask prompts):")
    for i, row in enumerate(samples):
        prediction = classifier(row["image"], mask=row["roi_mask"], top_k=3)
        top = prediction["labels"][0]
        print(f"  true {names[row['label']]:<12} -> {top['label']:<12} ({top['score']:.2f})")
        pictures.append(
            save_roi_visualization(
                row["image"],
                row["roi_mask"],
                classifier.image_processor,
                root / f"roi_prediction_{i}.png",
                labels=prediction["labels"],
            )
        )
    step("pipeline")

    # Summary
    print(
        "\n[demo] test split of the built-in ambiguous-food benchmark "
        f"({len(test)} images, {info['image_size']} px; ambiguous group: {ambiguous}):"
    )
    print(f"  {'model':<42} {'accuracy':>9} {'macro-F1':>9} {'ambig.F1':>9}")
    for name, scores in results.items():
        print(f"  {name:<42} {scores['accuracy']:9.3f} {scores['macro_f1']:9.3f} {scores['ambiguous_f1']:9.3f}")
    summary = {
        "timings_s": timings,
        "test": {k: {m: v[m] for m in ("accuracy", "macro_f1", "ambiguous_f1")} for k, v in results.items()},
    }
    (root / "demo_results.json").write_text(json.dumps(summary, indent=2))
    print(f"""
[demo] where everything went ({sum(timings.values()):.0f} s in all):
  data (image folders + masks):   {data_dir}
  fine-tuned teacher:             {teacher_dir}
  RveRNet, Hub-ready folder:      {model_dir}  (model card: {model_dir / "README.md"})
  what --push_to_hub would send:  {root / "hub-upload"}
  confusion matrices:             {root}/confusion_test_*.png, {model_dir / "confusion_matrix.png"}
  training curves:                {model_dir / "training_curves.png"}, {teacher_dir / "training_curves.png"}
  ROI visualisations:             {", ".join(pictures)}
  figures (JSON):                 {root / "demo_results.json"}
Try: {_try_command(data_dir, model_dir)}""")
    return summary


def _try_command(data_dir: Path, model_dir: Path) -> str:
    """A `predict` command that runs: one test photo with its exact mask."""
    photo = sorted((data_dir / "test").glob("*/*.png"))[0]
    mask = data_dir / "test_masks" / photo.parent.name / photo.name
    return f"rvernet-hf predict {photo} --model {model_dir} --mask {mask} --save_viz roi.png"


def main(argv: list[str] | None = None) -> int:
    run_demo(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
