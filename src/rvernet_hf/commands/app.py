# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf app`: serve a model on a web page (Gradio) with its `/classify` API (`rvernet_hf.app`; the `app`
extra)."""

import argparse

from .options import FormerName, add_model_options, check_paths, port_number, positive_int, resolve_model


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "app", help="a web page: click an object in a photo and read its label (Gradio; the `app` extra)"
    )
    add_model_options(parser, required=False, what="a saved RveRNet folder or Hub id (default: rvernet-demo/rvernet)")
    parser.add_argument("--sam_model_name_or_path", help="the segmenter for clicks/boxes (default: the processor's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=port_number, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument(
        "--top_k", type=positive_int, default=5, action=FormerName, former="--top-k", help="labels shown per ROI"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require_extra

    require_extra("app", "rvernet-hf app")
    from ..app import launch, make_app

    resolve_model(args)
    check_paths({"--model": args.model, "--sam_model_name_or_path": args.sam_model_name_or_path})
    app = make_app(
        args.model,
        sam_model_name_or_path=args.sam_model_name_or_path,
        revision=args.revision,
        device=args.device,
        top_k=args.top_k,
    )
    if app is None:
        return 2
    launch(app, host=args.host, port=args.port, share=args.share)
    return 0
