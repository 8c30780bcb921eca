# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf env`: the versions that matter when reporting a bug."""

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("env", help="print the versions of rvernet-hf and its dependencies")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import importlib
    import platform

    import torch
    import transformers

    from .. import __version__

    rows = {
        "rvernet-hf": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda available": torch.cuda.is_available(),
        "transformers": transformers.__version__,
    }
    for optional in ("timm", "accelerate", "datasets", "evaluate", "huggingface_hub", "safetensors", "onnxruntime"):
        try:
            rows[optional] = importlib.import_module(optional).__version__
        except ImportError:
            rows[optional] = "not installed"
    for key, value in rows.items():
        print(f"- {key}: {value}")
    return 0
