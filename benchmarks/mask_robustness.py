"""When the mask is wrong (issue 23): each saved model evaluated on one split with its masks perturbed (eroded,
dilated, shifted, replaced by their box or by a disk around a click, ragged), and accuracy drawn against mask IoU.

    python benchmarks/mask_robustness.py --data_dir DIR --model rvernet=FOLDER --model teacher=FOLDER
        [--split test] [--perturbations LIST] [--ambiguous_labels ketchup,chili_paste] [--seed 0]
        [--json out.json] [--save_plot out.png]

`DIR` holds `<split>/<class>/<image>` and `<split>_masks/` (as `rvernet-hf demo` writes under its `data/`). Models are
folders written by `rvernet-hf train` (RveRNet, or `--model_type single`: a full-image classifier ignores the mask
and draws a flat line). Printed: one row per (model, perturbation): mean IoU of the perturbed masks to the given
ones, accuracy, macro-F1, ambiguous-group F1; and, per model, the IoU below which it falls under the best full-image
model's accuracy (where RveRNet stops paying for its masks).
"""

import argparse
import json
import os
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
PERTURBATIONS = "none,erode:0.05,erode:0.1,erode:0.2,dilate:0.1,dilate:0.2,dilate:0.4,shift:0.1,shift:0.2,shift:0.4,box,disk,noise:0.1,other"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=FOLDER")
    parser.add_argument("--split", default="test")
    parser.add_argument("--perturbations", default=PERTURBATIONS)
    parser.add_argument("--ambiguous_labels", default="ketchup,chili_paste")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--json")
    parser.add_argument("--save_plot")
    args = parser.parse_args(argv)

    from rvernet_hf.evaluation import evaluate_mask_perturbations, load_for_evaluation, load_split
    from rvernet_hf.perturbations import parse_perturbations
    from rvernet_hf.testing_utils import machine_facts

    parse_perturbations(args.perturbations)  # refused before any model is loaded
    models = dict(item.split("=", 1) for item in args.model)
    split = load_split(args.data_dir, args.split)
    ambiguous = [name for name in args.ambiguous_labels.split(",") if name]
    results = {}
    for name, folder in models.items():
        model, transform = load_for_evaluation(folder)
        rows = evaluate_mask_perturbations(
            model, transform, split, args.perturbations, ambiguous, args.batch_size, seed=args.seed
        )
        results[name] = {
            "full_image": getattr(model.config, "model_type", None) != "rvernet",
            "rows": [
                {key: row[key] for key in ("perturbation", "mean_iou", "accuracy", "macro_f1", "ambiguous_f1")}
                for row in rows
            ],
        }
    print(f"{args.data_dir}/{args.split}: {len(split)} samples; seed {args.seed}")
    print(f"  {'model':<12} {'masks':<12} {'mean IoU':>8} {'accuracy':>9} {'macro-F1':>9} {'ambig.F1':>9}")
    for name, result in results.items():
        for row in result["rows"]:
            print(
                f"  {name:<12} {row['perturbation']:<12} {row['mean_iou']:8.3f} {row['accuracy']:9.3f} "
                f"{row['macro_f1']:9.3f} {row['ambiguous_f1'] if row['ambiguous_f1'] is not None else float('nan'):9.3f}"
            )
    baselines = [r["rows"][0]["accuracy"] for r in results.values() if r["full_image"]]
    if baselines:
        best = max(baselines)
        for name, result in results.items():
            if result["full_image"]:
                continue
            below = [row for row in result["rows"] if row["accuracy"] < best]
            worst_iou = max((row["mean_iou"] for row in below), default=None)
            result["falls_below_full_image_at_iou"] = worst_iou
            where = f"{worst_iou:.3f}" if worst_iou is not None else "never (on these perturbations)"
            print(f"  {name}: below the best full-image model ({best:.3f}) at mean IoU {where}")
    # Issue 23's goal: at mask IoU ~0.7 (every perturbation whose mean IoU is in [0.65, 0.8)), RveRNet keeps at least
    # 95 % of its exact-mask accuracy and still beats the full-image models.
    for name, result in results.items():
        if result["full_image"]:
            continue
        exact = result["rows"][0]["accuracy"] if result["rows"][0]["perturbation"] == "none" else None
        near = [row for row in result["rows"] if 0.65 <= row["mean_iou"] < 0.8]
        if exact and near:
            worst = min(near, key=lambda row: row["accuracy"])
            kept = worst["accuracy"] / exact
            beats = not baselines or worst["accuracy"] > max(baselines)
            result["goal_at_iou_0_7"] = {"worst": worst["perturbation"], "kept": kept, "beats_full_image": beats}
            print(
                f"  {name}: at mean IoU 0.65-0.8 the worst is {worst['perturbation']} ({worst['accuracy']:.3f}): "
                f"{100 * kept:.1f} % of exact-mask accuracy [goal >= 95 %: {'met' if kept >= 0.95 else 'MISSED'}]"
                + (f", {'above' if beats else 'NOT above'} the best full-image model" if baselines else "")
            )
    figures = {**machine_facts(), "split": args.split, "samples": len(split), "seed": args.seed, "models": results}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if args.save_plot:
        from rvernet_hf.visualization import save_mask_robustness_plot

        save_mask_robustness_plot(results, args.save_plot)
    return figures


if __name__ == "__main__":
    main()
