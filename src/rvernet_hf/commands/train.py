# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf train`: fine-tune RveRNet or a single classifier (`rvernet_hf.training`, whose `HfArgumentParser`
parses everything after `train`, a JSON file included: `rvernet-hf train --help`)."""

import argparse


OWN_ARGUMENTS = True  # everything after `train` goes to its own parser


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        add_help=False,
        help="fine-tune RveRNet or a single classifier (teacher, baseline), with distillation: `train --help`",
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def main(argv: list[str]) -> int:
    from ..training import main as train_main

    train_main(argv)
    return 0


def run(args: argparse.Namespace) -> int:
    return main(args.arguments)
