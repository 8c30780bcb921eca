# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf masks`: the segmenter's ROI masks for an image folder, computed once, stored with the dataset
(`save_to_disk`), resumable (`data.precompute_roi_masks`); the folder appears complete or not at all."""

import argparse

from .options import FormerName, check_paths, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "masks", help="compute SAM ROI masks for an image folder once, store them with the dataset (resumable)"
    )
    parser.add_argument("--data_dir", required=True, help="image folder: <data_dir>/<class>/<image>")
    parser.add_argument("--output_dir", required=True, help="where the dataset with masks is saved (save_to_disk)")
    parser.add_argument("--masks_dir", help="optional masks you already have: <masks_dir>/<class>/<stem>.png")
    parser.add_argument("--processor", help="an RveRNet processor folder or Hub id (its SAM settings are used)")
    parser.add_argument(
        "--sam_model_name_or_path",
        dest="sam_model",
        action=FormerName,
        former="--sam_model",
        default="facebook/sam-vit-base",
        help="segmenter checkpoint (Hub id or folder)",
    )
    parser.add_argument("--sam_batch_size", type=positive_int, default=4, help="images per SAM image-encoder pass")
    parser.add_argument("--batch_size", type=positive_int, default=8, help="samples per `datasets.map` batch")
    parser.add_argument("--shard_size", type=positive_int, default=256, help="samples per resumable cache shard")
    parser.add_argument("--cache_dir", help="where the shard cache lives (default: next to the dataset cache)")
    parser.add_argument(
        "--on_bad_samples",
        dest="on_error",
        action=FormerName,
        former="--on_error",
        choices=["raise", "skip"],
        default="raise",
        help="stop at the first bad sample, or skip bad samples and report them",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from ..data import load_image_folder_dataset, precompute_roi_masks
    from ..image_processing_rvernet import RveRNetImageProcessor
    from ..run_folder import replaced_atomically

    check_paths(
        {"--processor": args.processor, "--sam_model_name_or_path": args.sam_model},
        {"--data_dir": args.data_dir, "--masks_dir": args.masks_dir},
    )
    output = Path(args.output_dir)
    if output.exists() and any(output.iterdir()):
        raise ValueError(
            f"--output_dir {output} exists and is not empty: choose another folder (nothing is replaced)."
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun / accelerate launch: split the shards by rank
        from accelerate import PartialState

        PartialState()  # joins the process group (gloo on CPU, NCCL on GPUs)
    dataset = load_image_folder_dataset(args.data_dir, masks_dir=args.masks_dir)
    processor = (
        RveRNetImageProcessor.from_pretrained(args.processor)
        if args.processor
        else RveRNetImageProcessor(sam_model_name_or_path=args.sam_model, sam_batch_size=args.sam_batch_size)
    )
    masked, report = precompute_roi_masks(
        dataset,
        processor,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        cache_dir=args.cache_dir,
        on_error=args.on_error,
    )
    where = f"process {report.process_index} of {report.num_processes}: " if report.num_processes > 1 else ""
    print(f"{where}shards computed: {report.shards_computed}, reused from cache: {report.shards_reused}")
    if report.process_index != 0:
        return 0
    with replaced_atomically(output) as partial:  # readers find the dataset complete or absent
        masked.save_to_disk(partial)
    print(f"{len(masked)} samples with ROI masks saved to {args.output_dir}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} samples:")
        for entry in report.skipped:
            print(f"  - {entry['name'] or entry['index']}: {entry['error']}")
    return 0
