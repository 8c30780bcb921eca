# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf evaluate`: accuracy, macro-F1 and ambiguous-group F1 of a saved model on an image folder or a
dataset, one row per mask perturbation (`evaluation.evaluate_mask_perturbations`)."""

import argparse

from .options import (
    add_json_option,
    add_model_options,
    check_paths,
    positive_int,
    refuse_existing,
    resolve_model,
    write_json,
)


# --dataset_name's reading options (as `train` names them): (option, default, help).
DATASET_OPTIONS = (
    ("dataset_config_name", None, "the Hub dataset's configuration"),
    ("split", "test", "the split to evaluate"),
    ("data_layout", "auto", "auto, hub or segmentation (label maps: one sample per (image, class), as in training)"),
    ("id2label_file", None, "segmentation: JSON {id: name} of the label maps (default: the dataset's id2label.json)"),
    ("label_channel", "auto", "segmentation: the channel of a colour label map that holds the ids"),
    ("image_column", "image", "the image column"),
    ("label_column", "label", "the label column (segmentation: the label map)"),
    ("mask_column", "roi_mask", "the ROI mask column"),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a saved model on an image folder, with the masks given or perturbed"
    )
    add_model_options(
        parser,
        what="a folder written by `train` (RveRNet or --model_type single), or a Hub id",
        former_positional=True,
    )
    parser.add_argument("--data_dir", help="image folder: <data_dir>/<class>/<image>")
    parser.add_argument("--masks_dir", help="its ROI masks: <masks_dir>/<class>/<stem>.png (RveRNet needs them)")
    parser.add_argument(
        "--object_masks_dir", help="each photo's other objects, instance maps <dir>/<class>/<stem>.png (for 'other')"
    )
    parser.add_argument("--dataset_name", help="instead of --data_dir: a Hub dataset id or a save_to_disk folder")
    for option, default, text in DATASET_OPTIONS:
        parser.add_argument(f"--{option}", default=default, help=text)
    parser.add_argument("--ambiguous_labels", help="comma-separated labels whose macro-F1 is reported on its own")
    parser.add_argument(
        "--mask_perturbations",
        default="none",
        help="comma-separated: none, erode:S, dilate:S, shift:S, box, disk, noise:S (S a fraction of the ROI's size), "
        "other (another object's mask: needs --object_masks_dir or a segmentation --dataset_name)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-sample perturbations")
    parser.add_argument("--batch_size", type=positive_int, default=32)
    add_json_option(parser, "every row (with the per-class report)")
    parser.add_argument("--save_plot", metavar="OUT.png", help="draw accuracy against the masks' mean IoU")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..perturbations import parse_perturbations

    resolve_model(args)
    parse_perturbations(args.mask_perturbations)  # refused before anything is loaded
    if (args.data_dir is None) == (args.dataset_name is None):
        raise ValueError("give exactly one of --data_dir (an image folder) and --dataset_name (a Hub dataset).")
    if args.dataset_name and (args.masks_dir or args.object_masks_dir):
        raise ValueError("--masks_dir and --object_masks_dir go with --data_dir; a dataset holds its own masks.")
    check_paths(
        {"--model": args.model, "--dataset_name": args.dataset_name},
        {
            "--data_dir": args.data_dir,
            "--masks_dir": args.masks_dir,
            "--object_masks_dir": args.object_masks_dir,
            "--id2label_file": args.id2label_file,
        },
    )
    refuse_existing(("--json", args.json), ("--save_plot", args.save_plot))
    from ..evaluation import evaluate_mask_perturbations, load_evaluation_data, load_for_evaluation

    options = {option: getattr(args, option) for option, _, _ in DATASET_OPTIONS}
    dataset = load_evaluation_data(args.data_dir, args.masks_dir, args.object_masks_dir, args.dataset_name, **options)
    source = args.data_dir or f"{args.dataset_name} [{args.split}]"
    model, transform = load_for_evaluation(args.model, revision=args.revision)
    if getattr(model.config, "model_type", None) == "rvernet" or args.mask_perturbations != "none":
        masks = dataset["roi_mask"] if "roi_mask" in dataset.column_names else [None] * len(dataset)
        missing = [i for i, mask in enumerate(masks) if mask is None]
        if missing:
            raise ValueError(
                f"sample {missing[0]} of {source} has no ROI mask ({len(missing)} of {len(dataset)} lack one): "
                "give --masks_dir, or make them once with `rvernet-hf masks`."
            )
    ambiguous = [name.strip() for name in args.ambiguous_labels.split(",")] if args.ambiguous_labels else []
    rows = evaluate_mask_perturbations(
        model, transform, dataset, args.mask_perturbations, ambiguous, args.batch_size, args.device or "cpu", args.seed
    )
    if args.json == "-":
        write_json("-", rows)
        return 0
    print(f"{args.model} on {source} ({len(dataset)} samples):")
    print(f"  {'masks':<14} {'mean IoU':>8} {'accuracy':>9} {'macro-F1':>9} {'ambig.F1':>9} {'samples':>8}")
    for row in rows:
        ambiguous_f1 = f"{row['ambiguous_f1']:9.3f}" if row.get("ambiguous_f1") is not None else f"{'-':>9}"
        print(
            f"  {row['perturbation']:<14} {row['mean_iou']:8.3f} {row['accuracy']:9.3f} {row['macro_f1']:9.3f} "
            f"{ambiguous_f1} {row['samples']:8d}"
        )
    if args.json:
        write_json(args.json, rows)
        print(f"  written: {args.json}")
    if args.save_plot:
        from ..visualization import save_mask_robustness_plot

        print(f"  picture: {save_mask_robustness_plot({args.model: {'rows': rows}}, args.save_plot)}")
    return 0
