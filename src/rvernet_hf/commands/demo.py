# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf demo`: the whole method end to end, offline on CPU (`rvernet_hf.demo`, which parses its own
arguments: `rvernet-hf demo --help`)."""

import argparse


OWN_ARGUMENTS = True  # everything after `demo` goes to its own parser


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", add_help=False, help="the whole method end to end, offline on CPU: `demo --help`"
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def main(argv: list[str]) -> int:
    from ..demo import main as demo_main

    return demo_main(argv)


def run(args: argparse.Namespace) -> int:
    return main(args.arguments)
