# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The `rvernet-hf` command line. Each subcommand lives in the module that does the work; this file only routes."""

import argparse
import sys


def _env(args: argparse.Namespace) -> int:
    """Print the versions that matter when reporting a bug."""
    import platform

    import torch
    import transformers

    from . import __version__

    rows = {
        "rvernet-hf": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda available": torch.cuda.is_available(),
        "transformers": transformers.__version__,
    }
    for optional in ("timm", "accelerate", "datasets", "evaluate", "huggingface_hub", "safetensors"):
        try:
            rows[optional] = __import__(optional).__version__
        except ImportError:
            rows[optional] = "not installed"
    for key, value in rows.items():
        print(f"- {key}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvernet-hf", description="RveRNet: ROI + context classification with SAM masks and CNN distillation."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    env = subparsers.add_parser("env", help="print the versions of rvernet-hf and its dependencies")
    env.set_defaults(func=_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
