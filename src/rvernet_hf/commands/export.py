# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf export`: a saved model to ONNX (both towers and the head in one graph), checked against PyTorch with
ONNX Runtime before the folder appears (`onnx_export.export_onnx`; the `onnx` extra)."""

import argparse
import sys

from .options import add_model_options, check_paths, positive_int, resolve_model


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a saved model to ONNX (both towers and the head)")
    add_model_options(parser, what="a folder written by `train` (RveRNet or --model_type single), or a Hub id")
    parser.add_argument("--output_dir", help="the new folder: model.onnx, config.json, the processor (must not exist)")
    parser.add_argument("former", nargs="*", metavar="", help=argparse.SUPPRESS)  # MODEL OUTPUT_DIR, as before
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the format (onnx)")
    parser.add_argument(
        "--token_selection",
        choices=["dense"],
        help="export a token-sparse model dense (every patch read): sparse gathers cannot be an ONNX graph",
    )
    parser.add_argument("--opset", type=positive_int, help="ONNX opset (default: torch's exporter's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require_extra
    from ..onnx_export import export_onnx

    require_extra("onnx", "rvernet-hf export")
    if args.former:  # `export MODEL OUTPUT_DIR`, the former form
        slots = [name for name in ("model", "output_dir") if getattr(args, name) is None]
        if len(args.former) > len(slots):
            raise ValueError(
                f"unexpected arguments {args.former}: give the model as --model, the folder as --output_dir."
            )
        print(
            "note: `export MODEL OUTPUT_DIR` is deprecated: use --model MODEL --output_dir OUTPUT_DIR.",
            file=sys.stderr,
        )
        for name, value in zip(slots, args.former):
            setattr(args, name, value)
    resolve_model(args)
    if not args.output_dir:
        raise ValueError("--output_dir is required (the new folder for model.onnx).")
    check_paths({"--model": args.model})
    written = export_onnx(
        args.model,
        args.output_dir,
        token_selection=args.token_selection,
        opset_version=args.opset,
        revision=args.revision,
    )
    print(f"exported: {written}/model.onnx (with config.json and the image processor; checked with ONNX Runtime)")
    return 0
