# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf convert-original`: a checkpoint of the official RveRNet code as a folder of this package
(`convert_original.convert_original_checkpoint`)."""

import argparse

from .options import check_paths, positive_int


def register(subparsers) -> None:
    from ..convert_original import OFFICIAL_BACKBONES

    parser = subparsers.add_parser(
        "convert-original",
        help="convert a checkpoint of the official RveRNet code into a model folder of this package",
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="the official code's torch.save(model.state_dict()) file")
    parser.add_argument("output_dir", metavar="OUT", help="the new model folder (must not exist)")
    for option, what in (("--roi_module", "ROI module (net1)"), ("--extra_roi_module", "extra-ROI module (net2)")):
        parser.add_argument(
            option, required=True, choices=list(OFFICIAL_BACKBONES), help=f"the {what}, as named there"
        )
    classes = parser.add_mutually_exclusive_group(required=True)
    classes.add_argument("--num_labels", type=positive_int, help="how many classes the checkpoint classifies")
    classes.add_argument(
        "--id2label_file",
        help="the class names: JSON {id: name}, or the official code's YAML class dict {name: id}",
    )
    parser.add_argument("--input_size", type=positive_int, default=224, help="the official input_imgsz (default 224)")
    parser.set_defaults(func=run)


def read_label_file(path: str) -> dict[int, str]:
    """Class names from JSON `{id: name}` (or a list of names), or the official code's YAML `{name: id}`."""
    import json

    import yaml

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        loaded = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"--id2label_file {path}: not readable as {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'}: {error}"
        ) from None
    name_to_id = isinstance(loaded, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in loaded.values()
    )
    if name_to_id and all(isinstance(k, str) and not k.strip().isdigit() for k in loaded):  # the official YAML
        loaded = {index: name.strip() for name, index in loaded.items()}
    if isinstance(loaded, list):
        loaded = dict(enumerate(loaded))
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(
            f"--id2label_file {path}: expected {{id: name}} (JSON) or {{name: id}} (YAML), got {type(loaded).__name__}."
        )
    ids = sorted(int(k) for k in loaded)
    if ids != list(range(len(ids))):
        raise ValueError(f"--id2label_file {path}: the ids must be 0..{len(ids) - 1}, each once; got {ids[:8]}...")
    return {int(k): str(v) for k, v in loaded.items()}


def run(args: argparse.Namespace) -> int:
    from ..convert_original import convert_original_checkpoint

    check_paths(local={"CKPT": args.checkpoint, "--id2label_file": args.id2label_file})
    id2label = read_label_file(args.id2label_file) if args.id2label_file else None
    written = convert_original_checkpoint(
        args.checkpoint,
        args.output_dir,
        roi_module=args.roi_module,
        extra_roi_module=args.extra_roi_module,
        num_labels=args.num_labels,
        id2label=id2label,
        input_size=args.input_size,
    )
    print(f"converted: {written} (weights, config, code, the official preprocessing, a card; reload checked)")
    return 0
